/* A stand-in for Windows' bcryptprimitives.dll under Wine 8 (Debian 12), which lacks it: Rust's
 * std (1.78+) takes its random numbers from ProcessPrng there, so without this no Rust test
 * binary starts under that Wine. Used only by .ci/run's Windows step (the DPAPI tests); real
 * Windows has its own. ProcessPrng is answered with RtlGenRandom (advapi32 SystemFunction036),
 * which Wine implements. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
