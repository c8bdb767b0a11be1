/*
 * core/loader.h: what the parts of the loader share (all llmux__, none
 * exported; what the rest of the core uses is in internal.h). The parts,
 * by concern, each calling only those below it:
 *
 *   listing.c      llmux_provider_probe(), llmux_providers_list(),
 *                  llmux_caps_string()
 *   registry.c     the registry of in-process tables, the cache of
 *                  resolved providers, resolving a name; its lock
 *                  serialises everything below
 *   descriptor.c   reading and parsing plugins.d/<name>.conf
 *   module.c       opening a module with libltdl, its entry point, the
 *                  table checks
 *   plugin_dirs.c  the plugin directories in search order
 *   loader_util.c  file tests, paths, names, string lists
 *
 * listing.c calls registry.c, plugin_dirs.c and loader_util.c;
 * registry.c calls descriptor.c, module.c, plugin_dirs.c and
 * loader_util.c; descriptor.c, module.c and plugin_dirs.c call only
 * loader_util.c. Besides, every part calls alloc.c, and registry.c and
 * module.c hand plugins host.c's table. Nothing calls back up.
 */
#ifndef LLMUX_CORE_LOADER_H
#define LLMUX_CORE_LOADER_H

#include <stddef.h>

#include <ltdl.h>

#include "internal.h"

#if (defined(__unix__) || defined(__APPLE__)) && !defined(LLMUX_NO_DLFCN)
#include <dlfcn.h>
#define LLMUX__HAVE_DLFCN 1
#endif

/* Platform suffix of loadable modules (libltdl keeps its own private). */
#if defined(LT_MODULE_EXT)
#define LLMUX__MODULE_EXT LT_MODULE_EXT
#elif defined(_WIN32)
#define LLMUX__MODULE_EXT ".dll"
#else
#define LLMUX__MODULE_EXT ".so"
#endif

#define LLMUX__CONF_EXT ".conf"
#define LLMUX__BUILTIN  "built-in"

/* ---- loader_util.c: small helpers ---------------------------------------- */

int llmux__is_file(const char *path);
int llmux__ends_with(const char *s, const char *suffix);
/* ASCII letters and digits, whatever the locale. */
int llmux__is_alnum(int c);
/* [A-Za-z0-9_.-] */
int llmux__is_name_char(int c);
/* Provider and module names: [A-Za-z0-9_.-]+, not starting with '.'. */
int llmux__valid_name(const char *s);
/* dir + '/' (unless it ends in one) + name + ext (may be NULL). */
char *llmux__join_path(const char *dir, const char *name, const char *ext);
/* The directory part of path ("." or "/" at the least). */
char *llmux__dir_of(const char *path);
/* Appends a copy of s[0..len) to v[0..*n) unless it is there already. */
int llmux__strv_push_unique(char ***v, size_t *n, const char *s, size_t len);
void llmux__kvs_free(llmux_kv *kv, size_t n);

/* ---- plugin_dirs.c: the search directories ------------------------------- */

/* The directories to search, in order, without duplicates; extra is the
 * plugin_path (may be NULL). */
int llmux__dir_list(const char *extra, char ***out, size_t *n);
/* Writes "<prefix><what> "<name>" not found; searched: <dirs>" into err
 * and returns LLMUX_ENOPROVIDER. */
int llmux__not_found(const char *prefix, const char *what, const char *name,
                     char **dirs, size_t n, char *err, size_t errlen);

/* ---- descriptor.c: descriptors ------------------------------------------- */

/* A parsed descriptor. */
typedef struct llmux__desc {
    char *path;
    char *module;
    int module_line;
    char *base_url, *api_key_env, *base_url_env, *description;
    /* set in the file; an empty value then means "none", not "inherit" */
    int has_base_url, has_api_key_env, has_base_url_env;
    llmux_kv *opts;
    size_t n_opts;
} llmux__desc;

/* Reads and parses the descriptor file `path` into d (left empty on
 * error, with the reason in err). */
int llmux__desc_parse(const char *path, llmux__desc *d, char *err,
                      size_t errlen);
void llmux__desc_free(llmux__desc *d);

/* ---- module.c: modules and their tables ---------------------------------- */

/* Opens module file `path`, enters it and validates its table (the
 * registry's lock held). On success *hp holds one reference. */
int llmux__module_open(const char *path, lt_dlhandle *hp,
                       const llmux_provider **vtp, char *err, size_t errlen);
/* A module file's name without directory and extension. */
char *llmux__module_label(const char *path);
/* Ends libltdl's use, if it was started (the registry's lock held). */
void llmux__ltdl_exit(void);

/* ---- registry.c: for the listing ----------------------------------------- */

/* A copy of the registered names, in order; on failure *names keeps what
 * was copied (the caller frees it). */
int llmux__registered_names(char ***names, size_t *n);
/* The public view of a resolved provider (strings borrowed from p). */
void llmux__provider_info_fill(const llmux__provider *p,
                               llmux_provider_info *info);

#endif /* LLMUX_CORE_LOADER_H */
