/*
 * Glob patterns as Redis matches them (KEYS, SCAN MATCH, CONFIG GET):
 * '*' any run of bytes, '?' any one byte, '[abc]', '[^abc]' and '[a-z]'
 * classes, '\' escapes the next byte.  Iterative with one backtrack point
 * for the last '*', so the cost is O(len(pattern) * len(string)) at worst
 * and the stack never grows with the input.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>

#include "urkv.h"

static int fold(int ch, bool nocase)
{
	return nocase ? tolower(ch) : ch;
}

/* Matches the class at pat[*pi] ('[' already consumed) against ch; advances *pi past ']'. */
static bool class_match(const char *pat, size_t plen, size_t *pi, int ch, bool nocase)
{
	size_t i = *pi;
	bool neg = false, hit = false;

	if (i < plen && pat[i] == '^') {
		neg = true;
		i++;
	}
	while (i < plen && pat[i] != ']') {
		if (pat[i] == '\\' && i + 1 < plen) {
			i++;
			hit |= fold((unsigned char)pat[i], nocase) == ch;
			i++;
		} else if (i + 2 < plen && pat[i + 1] == '-' && pat[i + 2] != ']') {
			int lo = fold((unsigned char)pat[i], nocase);
			int hi = fold((unsigned char)pat[i + 2], nocase);

			if (lo > hi) {
				int t = lo;

				lo = hi;
				hi = t;
			}
			hit |= ch >= lo && ch <= hi;
			i += 3;
		} else {
			hit |= fold((unsigned char)pat[i], nocase) == ch;
			i++;
		}
	}
	if (i < plen)
		i++;	/* The ']'. */
	*pi = i;
	return neg ? !hit : hit;
}

bool urkv_glob_match(const char *pat, size_t plen, const char *s, size_t slen, bool nocase)
{
	size_t pi = 0, si = 0, star_p = (size_t)-1, star_s = 0;

	while (si < slen) {
		if (pi < plen && pat[pi] == '*') {
			while (pi < plen && pat[pi] == '*')
				pi++;
			if (pi == plen)
				return true;
			star_p = pi;
			star_s = si;
			continue;
		}
		if (pi < plen) {
			int ch = fold((unsigned char)s[si], nocase);
			size_t next = pi + 1;
			bool ok;

			if (pat[pi] == '?') {
				ok = true;
			} else if (pat[pi] == '[') {
				ok = class_match(pat, plen, &next, ch, nocase);
			} else if (pat[pi] == '\\' && pi + 1 < plen) {
				ok = fold((unsigned char)pat[pi + 1], nocase) == ch;
				next = pi + 2;
			} else {
				ok = fold((unsigned char)pat[pi], nocase) == ch;
			}
			if (ok) {
				pi = next;
				si++;
				continue;
			}
		}
		/* Mismatch: let the last '*' take one more byte. */
		if (star_p == (size_t)-1)
			return false;
		pi = star_p;
		si = ++star_s;
	}
	while (pi < plen && pat[pi] == '*')
		pi++;
	return pi == plen;
}
