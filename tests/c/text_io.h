/* Reading the flat, line-based files that Python writes for the C programs (the vectors index,
 * the conformance peer's send spec): whole files, hex-encoded strings, space-separated tokens.
 * Compiles as C and as C++; every function is static inline, so a program may use any subset. */
#ifndef NB_TEST_TEXT_IO_H
#define NB_TEST_TEXT_IO_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a whole file; NULL (with a message on stderr) if it cannot. Free with free(). */
static inline uint8_t *nb_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    size_t cap = 65536, n = 0, got;
    uint8_t *buf = (uint8_t *)malloc(cap);
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = (uint8_t *)realloc(buf, cap);
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Decodes lowercase hex ("-": empty) in place into a NUL-terminated string; returns its
 * length, or -1 when the text is not hex. */
static inline long nb_unhex(char *s) {
    if (strcmp(s, "-") == 0) {
        s[0] = '\0';
        return 0;
    }
    size_t n = strlen(s);
    if (n % 2 != 0) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v = 0;
        for (int j = 0; j < 2; j++) {
            char c = s[2 * i + j];
            unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                         : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                                                : 16u;
            if (d == 16u) return -1;
            v = v * 16 + d;
        }
        s[i] = (char)v;
    }
    s[n / 2] = '\0';
    return (long)(n / 2);
}

/* Splits line into at most max space-separated tokens (in place); returns how many. */
static inline int nb_split(char *line, char **tok, int max) {
    int n = 0;
    char *p = line;
    while (*p != '\0' && n < max) {
        while (*p == ' ' || *p == '\n' || *p == '\r') p++;
        if (*p == '\0') break;
        tok[n++] = p;
        while (*p != '\0' && *p != ' ' && *p != '\n' && *p != '\r') p++;
        if (*p != '\0') *p++ = '\0';
    }
    return n;
}

#endif
