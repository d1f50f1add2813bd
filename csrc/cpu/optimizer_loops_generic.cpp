// generic build of the optimizer update loops (flags set per file in CMakeLists.txt).
#define PK_ISA_NS isa_generic
#include "optimizer_loops.inc"
