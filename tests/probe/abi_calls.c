/* Raw system calls through the i386 entry (int $0x80), for the probe's tests.
 *
 * Built twice by the test set-up, without any libc (gcc -nostdlib -static):
 *   -m32: a 32-bit program, as any i386 binary makes its calls;
 *   -m64: a 64-bit program making i386 calls (int $0x80 works from 64-bit code too), with `-g` the upper
 *         halves of the argument registers set to garbage (the kernel uses the low halves only), and with a
 *         `+` before a number a native x86_64 call (the `syscall` instruction).
 *
 * usage: abi_calls [-g] NR ARG... [-- NR ARG...]...
 *   ARG: an integer (decimal, -decimal or 0xhex), s:TEXT (a pointer to TEXT, NUL-terminated) or x:HEX (a pointer
 *   to those bytes). Prints each call's return value on a line; exits 0.
 */

typedef unsigned long ulong;

#define ARENA 65536
static char arena[ARENA]; /* strings and buffers, below 4 GiB in both builds (not PIE) */
static ulong used;
static char out[4096];
static ulong outlen;

#ifdef __x86_64__
static int garbage;

static long i386_call(long n, ulong *a)
{
	ulong g = garbage ? 0xdead000000000000UL : 0;
	register ulong g12 __asm__("r12") = g;
	long r;
	ulong p = (ulong)a;
	__asm__ volatile("push %%rbp\n\t"
			 "mov 40(%%rdi), %%rbp\n\t"
			 "or %%r12, %%rbp\n\t"
			 "mov 32(%%rdi), %%rdi\n\t"
			 "or %%r12, %%rdi\n\t"
			 "int $0x80\n\t"
			 "pop %%rbp"
			 : "=a"(r), "+D"(p)
			 : "a"(n), "b"(a[0] | g), "c"(a[1] | g), "d"(a[2] | g), "S"(a[3] | g), "r"(g12)
			 : "memory", "r8", "r9", "r10", "r11");
	return r;
}

static long native_call(long n, ulong *a)
{
	long r;
	register ulong r10 __asm__("r10") = a[3];
	register ulong r8 __asm__("r8") = a[4];
	register ulong r9 __asm__("r9") = a[5];
	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"(n), "D"(a[0]), "S"(a[1]), "d"(a[2]), "r"(r10), "r"(r8), "r"(r9)
			 : "memory", "rcx", "r11");
	return r;
}
#else
static long i386_call(long n, ulong *a)
{
	long r;
	ulong p = (ulong)a;
	__asm__ volatile("push %%ebp\n\t"
			 "mov 20(%%edi), %%ebp\n\t"
			 "mov 16(%%edi), %%edi\n\t"
			 "int $0x80\n\t"
			 "pop %%ebp"
			 : "=a"(r), "+D"(p)
			 : "a"(n), "b"(a[0]), "c"(a[1]), "d"(a[2]), "S"(a[3])
			 : "memory");
	return r;
}
#endif

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return c - 'A' + 10;
}

static ulong arg(const char *s)
{
	if (s[0] == 's' && s[1] == ':') {
		char *p = arena + used;
		const char *q = s + 2;
		while (*q && used < ARENA - 1)
			arena[used++] = *q++;
		arena[used++] = 0;
		return (ulong)p;
	}
	if (s[0] == 'x' && s[1] == ':') {
		char *p = arena + used;
		for (const char *q = s + 2; q[0] && q[1] && used < ARENA; q += 2)
			arena[used++] = hexval(q[0]) << 4 | hexval(q[1]);
		used = (used + 7) & ~7UL;
		return (ulong)p;
	}
	int neg = 0;
	ulong v = 0;
	if (*s == '-') {
		neg = 1;
		s++;
	}
	if (s[0] == '0' && s[1] == 'x') {
		for (s += 2; *s; s++)
			v = v * 16 + hexval(*s);
	} else {
		for (; *s; s++)
			v = v * 10 + (*s - '0');
	}
	return neg ? -v : v;
}

static void put_long(long v)
{
	char tmp[24];
	int n = 0;
	ulong u = v < 0 ? -(ulong)v : (ulong)v;
	do {
		tmp[n++] = '0' + u % 10;
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[n++] = '-';
	while (n && outlen < sizeof(out) - 1)
		out[outlen++] = tmp[--n];
	out[outlen++] = '\n';
}

static int same(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

void cmain(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	int i = 1;
#ifdef __x86_64__
	if (i < argc && same(argv[i], "-g")) {
		garbage = 1;
		i++;
	}
#endif
	while (i < argc) {
		const char *nrs = argv[i++];
		int native = nrs[0] == '+';
		long nr = arg(nrs + native);
		ulong a[6] = {0, 0, 0, 0, 0, 0};
		for (int k = 0; i < argc && !same(argv[i], "--"); i++, k++)
			if (k < 6)
				a[k] = arg(argv[i]);
		i++; /* the "--" */
		long r;
#ifdef __x86_64__
		r = native ? native_call(nr, a) : i386_call(nr, a);
#else
		r = i386_call(nr, a);
#endif
		put_long(r);
	}
	ulong w[6] = {1, (ulong)out, outlen, 0, 0, 0};
	i386_call(4, w);     /* write */
	ulong e[6] = {0, 0, 0, 0, 0, 0};
	i386_call(252, e);   /* exit_group */
	for (;;)
		;
}

#ifdef __x86_64__
__asm__(".globl _start\n_start:\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall cmain\n\thlt\n");
#else
__asm__(".globl _start\n_start:\n\tmov %esp, %eax\n\tand $-16, %esp\n\tsub $12, %esp\n\tpush %eax\n"
	"\tcall cmain\n\thlt\n");
#endif
