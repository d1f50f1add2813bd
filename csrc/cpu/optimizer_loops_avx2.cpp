// avx2 build of the optimizer update loops (flags set per file in CMakeLists.txt).
#define PK_ISA_NS isa_avx2
#include "optimizer_loops.inc"
