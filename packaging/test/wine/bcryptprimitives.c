/*
 * A stand-in for Windows' bcryptprimitives.dll, for the tests under Wine
 * only (packaging/test/test-windows.sh); never shipped.
 *
 * Go's Windows runtime loads bcryptprimitives.dll from System32 at start
 * and takes its random bytes from ProcessPrng (src/runtime/os_windows.go,
 * and crypto/rand through internal/syscall/windows); without the DLL a Go
 * program dies with "fatal error: bcryptprimitives.dll not found".
 * Windows 10, Server 2016 and newer have it; Wine 8 does not. ProcessPrng
 * is the only function Go imports from it.
 *
 * This one fills the buffer from RtlGenRandom (advapi32's
 * SystemFunction036), which Wine implements with the host's random
 * source. Like Windows' ProcessPrng it always returns TRUE: there is no
 * way to report a failure to Go, so a failure of RtlGenRandom ends the
 * process instead of handing out predictable bytes.
 *
 * Built by test-windows.sh:
 *   x86_64-w64-mingw32-gcc -shared -O2 -s -o bcryptprimitives.dll \
 *       bcryptprimitives.c -ladvapi32
 */
#include <windows.h>

/* RtlGenRandom: exported by advapi32 under this name. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			ExitProcess(0xBADC0DE);
		data += n;
		len -= n;
	}
	return TRUE;
}
