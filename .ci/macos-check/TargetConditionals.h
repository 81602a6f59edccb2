/* Stand-in for the macOS SDK's TargetConditionals.h, for .ci/run's `cargo check --target
 * x86_64-apple-darwin` on Linux only: ring's build script compiles its C for the target, and
 * its base.h includes this header for TARGET_OS_OSX / TARGET_OS_IPHONE. Nothing is linked and
 * nothing built with it runs; a Mac uses its own SDK. */
#ifndef AZURE_CREDENTIALS_TARGET_CONDITIONALS_STUB_H
#define AZURE_CREDENTIALS_TARGET_CONDITIONALS_STUB_H
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_TV 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_SIMULATOR 0
#endif
