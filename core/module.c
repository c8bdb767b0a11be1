/*
 * core/module.c: opening a plugin module and checking its table.
 *
 * Modules are opened with libltdl from full paths we build ourselves
 * (lt_dlopenadvise with ext + local advice; the global search path is
 * never touched), and entered through "llmux_provider_entry" or its
 * "<module>_LTX_" form. A truncated ELF file is refused before the system
 * loader maps it; when libltdl fails, the system loader is asked why.
 * Every table, loaded or registered in-process, goes through
 * llmux__provider_check(). libltdl's state (g_ltdl_ready) is guarded by
 * the registry's lock (registry.c): llmux__module_open() and
 * llmux__ltdl_exit() are called under it. Calls loader_util.c, and the
 * plugin's entry point with host.c's table.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "loader.h"

#if defined(__linux__)
#include <elf.h>
#include <link.h> /* ElfW() */
#define LLMUX__HAVE_ELF 1
#endif

static int g_ltdl_ready;

/* ---- provider table checks ------------------------------------------------
 */

int llmux__provider_check(const llmux_provider *vt, const char *what, char *err,
                          size_t errlen)
{
    const char *hook = NULL;
    if (!what)
        what = "provider";
    if (!vt)
        return llmux__seterr(err, errlen, LLMUX_EINVAL, "%s: no provider table",
                             what);
    /* Only abi_version and struct_size are safe to read before these. */
    if (vt->abi_version != LLMUX_PROVIDER_ABI)
        return llmux__seterr(err, errlen, LLMUX_EABI,
                             "plugin %s has ABI %u, core has %d", what,
                             (unsigned)vt->abi_version, LLMUX_PROVIDER_ABI);
    if (vt->struct_size < LLMUX_PROVIDER_V1_SIZE)
        return llmux__seterr(err, errlen, LLMUX_EPLUGINSIZE,
                             "plugin %s: struct_size %u smaller than "
                             "minimum %u",
                             what, (unsigned)vt->struct_size,
                             (unsigned)LLMUX_PROVIDER_V1_SIZE);
    if (!vt->name)
        return llmux__seterr(err, errlen, LLMUX_EPLUGIN,
                             "plugin %s: missing required field name", what);
    if (!vt->encode)
        hook = "encode";
    else if (!vt->decode)
        hook = "decode";
    else if ((vt->caps & LLMUX_CAP_STREAM) && !vt->decode_event)
        hook = "decode_event (needed for the stream capability)";
    if (hook)
        return llmux__seterr(err, errlen, LLMUX_EPLUGIN,
                             "plugin %s: missing required hook %s", what, hook);
    return 0;
}

/* ---- modules --------------------------------------------------------------
 */

static int ltdl_ready(char *err, size_t errlen)
{
    if (!g_ltdl_ready) {
        if (lt_dlinit() != 0) {
            const char *e = lt_dlerror();
            return llmux__seterr(err, errlen, LLMUX_EPLUGIN,
                                 "cannot initialise libltdl: %s",
                                 e ? e : "unknown error");
        }
        g_ltdl_ready = 1;
    }
    return 0;
}

/* Ends libltdl's use, if it was started (llmux__providers_cleanup). */
void llmux__ltdl_exit(void)
{
    if (g_ltdl_ready) {
        lt_dlexit();
        g_ltdl_ready = 0;
    }
}

/* A module file's name without directory and extension. */
char *llmux__module_label(const char *path)
{
    const char *base = strrchr(path, '/');
    char *s = llmux__strdup(base ? base + 1 : path), *dot;
    if (s && (dot = strrchr(s, '.')) != NULL && dot != s)
        *dot = '\0';
    return s;
}

/* The module's name as ltdl derives it: basename without extension, with
 * characters other than [A-Za-z0-9_] turned into '_'. */
static char *module_symname(const char *path)
{
    const char *base = strrchr(path, '/');
    char *s, *dot, *p;
    s = llmux__strdup(base ? base + 1 : path);
    if (!s)
        return NULL;
    if ((dot = strrchr(s, '.')) != NULL && dot != s)
        *dot = '\0';
    for (p = s; *p; p++)
        if (!llmux__is_alnum((unsigned char)*p))
            *p = '_';
    return s;
}

static void *find_entry(lt_dlhandle h, const char *path)
{
    void *sym = lt_dlsym(h, LLMUX_PROVIDER_ENTRY_SYMBOL);
    if (!sym) {
        char *mod = module_symname(path);
        char *ltx =
            mod ? llmux__asprintf("%s_LTX_%s", mod, LLMUX_PROVIDER_ENTRY_SYMBOL)
                : NULL;
        if (ltx)
            sym = lt_dlsym(h, ltx);
        llmux__free(ltx);
        llmux__free(mod);
    }
    return sym;
}

/* libltdl reports every failed open as "file not found"; for a file that
 * exists, ask the system loader for the real reason. */
static void load_reason(const char *path, char *buf, size_t len)
{
    const char *lt = lt_dlerror();
    if (!lt)
        lt = "unknown error";
#ifdef LLMUX__HAVE_DLFCN
    {
        void *h = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
        const char *e = h ? NULL : dlerror();
        if (h)
            dlclose(h);
        if (e) {
            size_t n = strlen(path);
            /* glibc starts with the path, which the caller already says */
            if (strncmp(e, path, n) == 0 && strncmp(e + n, ": ", 2) == 0)
                e += n + 2;
            snprintf(buf, len, "%s (ltdl: %s)", e, lt);
            return;
        }
    }
#endif
    snprintf(buf, len, "%s", lt);
}

#ifdef LLMUX__HAVE_ELF
/*
 * glibc's dlopen maps segments without checking them against the file
 * size, so a truncated module (an interrupted copy) kills the process
 * with SIGBUS. Check that every loadable segment lies within the file.
 * Returns NULL when fine or not a native ELF file (dlopen judges those).
 */
static const char *elf_problem(const char *path)
{
    ElfW(Ehdr) eh;
    ElfW(Phdr) ph;
    struct stat st;
    FILE *f;
    size_t i;
    const char *bad = NULL;
    uint64_t size;

    if (stat(path, &st) != 0 || !(f = fopen(path, "rb")))
        return NULL;
    size = (uint64_t)st.st_size;
    if (fread(&eh, 1, sizeof eh, f) != sizeof eh ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
        fclose(f);
        return NULL;
    }
    if (eh.e_ident[EI_CLASS] !=
            (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32) ||
        eh.e_phentsize != sizeof ph) {
        fclose(f);
        return NULL;
    }
    if ((uint64_t)eh.e_phoff + (uint64_t)eh.e_phnum * sizeof ph > size)
        bad = "program headers beyond end of file";
    else if (fseek(f, (long)eh.e_phoff, SEEK_SET) != 0)
        bad = "cannot read program headers";
    for (i = 0; !bad && i < eh.e_phnum; i++) {
        if (fread(&ph, 1, sizeof ph, f) != sizeof ph)
            bad = "cannot read program headers";
        else if (ph.p_type == PT_LOAD &&
                 ((uint64_t)ph.p_offset > size ||
                  (uint64_t)ph.p_filesz > size - (uint64_t)ph.p_offset))
            bad = "segment beyond end of file";
    }
    fclose(f);
    return bad;
}
#endif

/*
 * Opens module file `path`, enters it and validates its table; messages
 * name the file. On success *hp holds one reference on the handle.
 */
int llmux__module_open(const char *path, lt_dlhandle *hp,
                       const llmux_provider **vtp, char *err, size_t errlen)
{
    lt_dladvise adv;
    lt_dlhandle h;
    union {
        void *p;
        llmux_provider_entry_fn *f;
    } entry;
    const llmux_provider *vt;
    int rc;

    if ((rc = ltdl_ready(err, errlen)) != 0)
        return rc;
#ifdef LLMUX__HAVE_ELF
    {
        const char *bad = elf_problem(path);
        if (bad)
            return llmux__seterr(err, errlen, LLMUX_EPLUGIN,
                                 "%s: cannot load module: truncated or "
                                 "corrupt ELF file (%s)",
                                 path, bad);
    }
#endif
    if (lt_dladvise_init(&adv) != 0)
        return LLMUX_ENOMEM;
    if (lt_dladvise_ext(&adv) != 0 || lt_dladvise_local(&adv) != 0) {
        lt_dladvise_destroy(&adv);
        return LLMUX_ENOMEM;
    }
    h = lt_dlopenadvise(path, adv);
    lt_dladvise_destroy(&adv);
    if (!h) {
        char why[LLMUX__ERRBUF];
        load_reason(path, why, sizeof why);
        return llmux__seterr(err, errlen, LLMUX_EPLUGIN,
                             "%s: cannot load module: %s", path, why);
    }
    entry.p = find_entry(h, path);
    if (!entry.p) {
        lt_dlclose(h);
        return llmux__seterr(err, errlen, LLMUX_ENOTPLUGIN,
                             "%s: not an llmux plugin (no %s symbol)", path,
                             LLMUX_PROVIDER_ENTRY_SYMBOL);
    }
    vt = entry.f(&llmux__host, LLMUX_HOST_ABI);
    if (!vt) {
        lt_dlclose(h);
        return llmux__seterr(err, errlen, LLMUX_EABI,
                             "%s: plugin refused host ABI %d", path,
                             LLMUX_HOST_ABI);
    }
    if ((rc = llmux__provider_check(vt, path, err, errlen)) != 0) {
        lt_dlclose(h);
        return rc;
    }
    *hp = h;
    *vtp = vt;
    return 0;
}
