/*
 * Which sanitizer this translation unit is built with.  The build defines
 * URT_ASAN / URT_TSAN (CMake URT_SANITIZE); this header turns that into
 * constants so that .c files need no #ifdef.
 */
#ifndef URT_RUNTIME_SANITIZE_H
#define URT_RUNTIME_SANITIZE_H

#if defined(URT_ASAN) || defined(URT_TSAN)
#define URT_SANITIZED 1
#else
#define URT_SANITIZED 0
#endif

#endif /* URT_RUNTIME_SANITIZE_H */
