/**
 * @file llmux/providers.h
 * Discovering provider plugins.
 *
 * Providers are resolved by name: providers registered in-process first,
 * then in each plugin directory in order a descriptor "<name>.conf" or a
 * module "<name>.so". The directories, in order (llmux_plugin_dirs_list()
 * shows them, `llmux providers -v` prints them):
 *
 *  1. $LLMUX_PLUGIN_PATH (':'-separated; ignored by setuid, setgid and
 *     capability-raised programs, through secure_getenv);
 *  2. the client's plugin_path option (or the plugin_path argument);
 *  3. llmux/plugins.d beside the loaded libllmux.so, found at run time, so
 *     an installed tree works from any prefix and after being moved (a
 *     build tree has the same layout: build/lib/llmux/plugins.d);
 *  4. for the static library instead of 3: the directory configured at
 *     build time (${libdir}/llmux/plugins.d of the configured prefix); a
 *     program's own directory is never searched.
 *
 * A name holding '/' is not searched: it is the path of a module, or of a
 * descriptor when it ends in ".conf". Each name is loaded once per process
 * (its module's init hook runs then) and cached until
 * llmux_global_cleanup(). Loading is serialised internally, so these
 * functions may be called from any thread.
 */
#ifndef LLMUX_PROVIDERS_H
#define LLMUX_PROVIDERS_H

#include "common.h"

LLMUX_BEGIN_DECL

/*
 * Capabilities a provider declares (llmux_provider_info.caps,
 * llmux_provider.caps). A request for an operation whose bit is missing
 * fails at submission with LLMUX_ENOTSUP.
 */
#define LLMUX_CAP_CHAT       (1u << 0) /**< chat completions (LLMUX_OP_CHAT) */
#define LLMUX_CAP_STREAM     (1u << 1) /**< streamed chat or completions */
#define LLMUX_CAP_COMPLETE   (1u << 2) /**< text completion */
#define LLMUX_CAP_EMBED      (1u << 3) /**< embeddings */
#define LLMUX_CAP_MODELS     (1u << 4) /**< model listing */
#define LLMUX_CAP_TOOLS      (1u << 5) /**< tools and tool calls in chat */
#define LLMUX_CAP_JSON       (1u << 6) /**< response_format */
#define LLMUX_CAP_TOKENIZE   (1u << 7) /**< tokenize */
#define LLMUX_CAP_DETOKENIZE (1u << 8) /**< detokenize */
#define LLMUX_CAP_EVALUATE   (1u << 9) /**< evaluate (score a completion) */

/**
 * What is known about one provider. All strings are borrowed: from
 * llmux_provider_probe() valid until llmux_global_cleanup(), in the
 * callback of llmux_providers_list() during the callback only.
 */
typedef struct llmux_provider_info {
    const char *name;        /**< name to use in config strings */
    const char *module;      /**< module implementing it ("openai"): the
                                  module file's name without extension */
    const char *path;        /**< file it came from (the module file, or
                                  the file that failed), or "built-in" */
    const char *descriptor;  /**< the .conf file, or NULL */
    const char *version;     /**< plugin version, may be NULL */
    const char *description; /**< may be NULL */
    const char *base_url;    /**< default base URL */
    const char *api_key_env; /**< environment variable for the key */
    uint64_t caps;           /**< LLMUX_CAP_* */
    int status;              /**< 0, or in a listing the llmux code
                                  loading failed with (then only name,
                                  path, descriptor and error are set) */
    const char *error;       /**< why loading failed, or NULL */
} llmux_provider_info;

/**
 * Receives one provider of llmux_providers_list(); `info` is borrowed for
 * the call. Return non-zero to stop the listing.
 */
typedef int (*llmux_provider_cb)(const llmux_provider_info *info,
                                 void *userdata);

/**
 * Lists every provider found: those registered in-process, then the
 * descriptors and modules of each directory in search order, sorted by
 * file name; a name found twice is listed once, from where it resolves.
 * Every one listed is loaded as a request would load it (its init hook
 * runs, and it stays cached until llmux_global_cleanup()). Broken plugins
 * and files whose name is no valid provider name are listed with their
 * status and error. `plugin_path` adds directories as the client option
 * does (may be NULL). The callback runs on the calling thread, outside
 * the loader's lock. Returns 0 (also when the callback stopped the
 * listing), LLMUX_EINVAL without a callback, or LLMUX_ENOMEM.
 */
LLMUX_EXTERN int llmux_providers_list(const char *plugin_path,
                                      llmux_provider_cb cb, void *userdata);

/**
 * Resolves and loads one provider by name, as a request naming it would.
 * On success returns 0 and fills `*info` (may be NULL; strings valid until
 * llmux_global_cleanup()). On failure returns the code (LLMUX_ENOPROVIDER,
 * LLMUX_ENOTPLUGIN, LLMUX_EABI, LLMUX_EPLUGINSIZE, LLMUX_EPLUGIN,
 * LLMUX_ECONFIG for a bad name or descriptor, LLMUX_EINVAL for no name),
 * zeroes `*info` and writes the reason, naming the file, to `errbuf` (may
 * be NULL) of `errlen` bytes, truncated to fit.
 */
LLMUX_EXTERN int llmux_provider_probe(const char *name, const char *plugin_path,
                                      llmux_provider_info *info, char *errbuf,
                                      size_t errlen);

/** Where a directory of the plugin search comes from. */
typedef enum llmux_plugin_dir_source {
    LLMUX_PLUGIN_DIR_ENV = 1,       /**< $LLMUX_PLUGIN_PATH */
    LLMUX_PLUGIN_DIR_OPTION = 2,    /**< the plugin_path option or argument */
    LLMUX_PLUGIN_DIR_RELATIVE = 3,  /**< beside the loaded libllmux.so */
    LLMUX_PLUGIN_DIR_CONFIGURED = 4 /**< static library: the build's prefix */
} llmux_plugin_dir_source;

/** One directory of the plugin search. May grow at its end. */
typedef struct llmux_plugin_dir {
    const char *path;               /**< the directory; borrowed */
    llmux_plugin_dir_source source; /**< where it comes from */
    int exists;                     /**< 1 if it is a directory now */
} llmux_plugin_dir;

/**
 * Receives one directory of llmux_plugin_dirs_list(); return non-zero to
 * stop the listing.
 */
typedef int (*llmux_plugin_dir_cb)(const llmux_plugin_dir *dir, void *userdata);

/**
 * Lists the plugin directories in search order, duplicates dropped (the
 * first place wins). `plugin_path` adds directories as the client option
 * does (may be NULL). `dir` and its strings are valid during the callback
 * only. Returns 0, LLMUX_EINVAL without a callback, or LLMUX_ENOMEM.
 */
LLMUX_EXTERN int llmux_plugin_dirs_list(const char *plugin_path,
                                        llmux_plugin_dir_cb cb, void *userdata);

/**
 * A short name for a llmux_plugin_dir_source: "LLMUX_PLUGIN_PATH",
 * "plugin_path", "relative", "configured", or "unknown". A static string.
 */
LLMUX_EXTERN const char *llmux_plugin_dir_source_name(int source);

/**
 * Writes the names of the bits in `caps` ("chat,stream,embed"; unknown
 * bits are left out) into `buf` of `len` bytes, always NUL-terminated; a
 * name that does not fit is left out whole. Returns `buf` (unchanged when
 * it is NULL or `len` is 0).
 */
LLMUX_EXTERN char *llmux_caps_string(uint64_t caps, char *buf, size_t len);

LLMUX_END_DECL

#endif /* LLMUX_PROVIDERS_H */
