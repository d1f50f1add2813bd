// generic build of the element-wise and reduction loops (flags set per file in CMakeLists.txt).
#define PK_ISA_NS isa_generic
#include "elementwise_loops.inc"
