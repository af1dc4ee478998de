/**
 * @file
 * Definitions shared by every public urt header.
 */
#ifndef URT_COMMON_H
#define URT_COMMON_H

/**
 * Marks a function as part of the public ABI.  liburt is compiled with
 * -fvisibility=hidden, so anything without URT_API stays internal.
 */
#ifndef URT_API
#define URT_API __attribute__((visibility("default")))
#endif

/** Wraps declarations so that the headers also compile as C++. */
#ifndef URT_BEGIN_DECLS
#ifdef __cplusplus
#define URT_BEGIN_DECLS extern "C" {
#define URT_END_DECLS }
#else
#define URT_BEGIN_DECLS
#define URT_END_DECLS
#endif
#endif

#endif /* URT_COMMON_H */
