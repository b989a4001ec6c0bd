/*
 * A stand-in for Windows' bcryptprimitives.dll, for running Graver's tests under wine.
 *
 * Rust's standard library (1.78 and later) gets its random numbers from
 * ProcessPrng in bcryptprimitives.dll, which Windows 10 and later have and
 * wine 8.0 lacks, so every Rust executable fails to load there. This DLL
 * exports ProcessPrng and fills the buffer with RtlGenRandom
 * (SystemFunction036 in advapi32), which wine has. It is never shipped:
 * scripts/wine-test builds it with mingw-w64 and puts it on WINEPATH.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    /* RtlGenRandom takes a 32-bit length; ProcessPrng a pointer-sized one. */
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
