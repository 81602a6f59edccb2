/* Stand-in libc header for .ci/run's macOS `cargo check` on Linux (see TargetConditionals.h). */
#ifndef AZURE_CREDENTIALS_ASSERT_STUB_H
#define AZURE_CREDENTIALS_ASSERT_STUB_H
#define assert(expression) ((void)0)
#endif
