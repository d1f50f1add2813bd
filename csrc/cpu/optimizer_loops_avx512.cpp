// avx512 build of the optimizer update loops (flags set per file in CMakeLists.txt).
#define PK_ISA_NS isa_avx512
#include "optimizer_loops.inc"
