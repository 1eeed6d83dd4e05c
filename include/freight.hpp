/*
 * freight.hpp — the C ABI of Freight for C++: include/freight.h with C linkage.
 *
 * freight.h has no extern "C" block of its own because PHP's FFI::cdef, which reads the same
 * header, cannot parse one; C++ code includes this file instead (or wraps the #include in
 * extern "C" { … } itself).
 */

#ifndef FREIGHT_HPP
#define FREIGHT_HPP

extern "C" {
#include "freight.h"
}

#endif /* FREIGHT_HPP */
