/* Stand-in libc header for .ci/run's macOS `cargo check` on Linux (see TargetConditionals.h):
 * the declarations ring's C uses. */
#ifndef AZURE_CREDENTIALS_STRING_STUB_H
#define AZURE_CREDENTIALS_STRING_STUB_H
#include <stddef.h>
void *memcpy(void *destination, const void *source, size_t length);
void *memmove(void *destination, const void *source, size_t length);
void *memset(void *destination, int value, size_t length);
int memcmp(const void *left, const void *right, size_t length);
size_t strlen(const char *string);
#endif
