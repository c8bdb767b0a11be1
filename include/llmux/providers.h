/*
 * llmux/providers.h: discovering provider plugins.
 *
 * Providers are resolved by name: providers registered in-process first,
 * then in each plugin directory in order a descriptor "<name>.conf" or a
 * module "<name>.so". The directories, in order (llmux_plugin_dirs_list()
 * shows them, `llmux providers -v` prints them):
 *
 *  1. $LLMUX_PLUGIN_PATH (':'-separated);
 *  2. the client's plugin_path option (or the plugin_path argument);
 *  3. llmux/plugins.d beside the loaded libllmux.so, found at run time, so
 *     an installed tree works from any prefix and after being moved (a
 *     build tree has the same layout: build/lib/llmux/plugins.d);
 *  4. for the static library only: ../lib/llmux/plugins.d from the
 *     program's directory, then the directory configured at build time.
 */
#ifndef LLMUX_PROVIDERS_H
#define LLMUX_PROVIDERS_H

#include "common.h"

LLMUX_BEGIN_DECL

/** Capabilities a provider declares. */
#define LLMUX_CAP_CHAT       (1u << 0)
#define LLMUX_CAP_STREAM     (1u << 1)
#define LLMUX_CAP_COMPLETE   (1u << 2)
#define LLMUX_CAP_EMBED      (1u << 3)
#define LLMUX_CAP_MODELS     (1u << 4)
#define LLMUX_CAP_TOOLS      (1u << 5)
#define LLMUX_CAP_JSON       (1u << 6) /* response_format */
#define LLMUX_CAP_TOKENIZE   (1u << 7)
#define LLMUX_CAP_DETOKENIZE (1u << 8)
#define LLMUX_CAP_EVALUATE   (1u << 9)

/** What is known about one provider. All strings borrowed. */
typedef struct llmux_provider_info {
    const char *name;        /**< name to use in config strings */
    const char *module;      /**< module implementing it ("openai") */
    const char *path;        /**< file it came from, or "built-in" */
    const char *descriptor;  /**< the .conf file, or NULL */
    const char *version;     /**< plugin version, may be NULL */
    const char *description; /**< may be NULL */
    const char *base_url;    /**< default base URL */
    const char *api_key_env; /**< environment variable for the key */
    uint64_t caps;           /**< LLMUX_CAP_* */
    int status;              /**< 0, or the llmux code loading failed */
    const char *error;       /**< why loading failed, or NULL */
} llmux_provider_info;

/** Receives one provider; return non-zero to stop the listing. */
typedef int (*llmux_provider_cb)(const llmux_provider_info *info,
                                 void *userdata);

/**
 * Lists every provider found (built-ins, then each directory in search
 * order; a name found twice is listed once, from where it resolves).
 * Broken plugins are listed with their status and error. `plugin_path`
 * adds directories as the client option does (may be NULL).
 */
LLMUX_EXTERN int llmux_providers_list(const char *plugin_path,
                                      llmux_provider_cb cb, void *userdata);

/**
 * Resolves and loads one provider by name, as a request naming it would.
 * On success fills `*info` (strings valid until llmux_global_cleanup()).
 * On failure returns the code (LLMUX_ENOPROVIDER, LLMUX_ENOTPLUGIN,
 * LLMUX_EABI, LLMUX_EPLUGINSIZE, LLMUX_EPLUGIN) and writes the reason to
 * `errbuf` (may be NULL) of `errlen` bytes.
 */
LLMUX_EXTERN int llmux_provider_probe(const char *name, const char *plugin_path,
                                      llmux_provider_info *info, char *errbuf,
                                      size_t errlen);

/** Where a directory of the plugin search comes from. */
typedef enum llmux_plugin_dir_source {
    LLMUX_PLUGIN_DIR_ENV = 1,       /**< $LLMUX_PLUGIN_PATH */
    LLMUX_PLUGIN_DIR_OPTION = 2,    /**< the plugin_path option or argument */
    LLMUX_PLUGIN_DIR_RELATIVE = 3,  /**< beside the library (or program) */
    LLMUX_PLUGIN_DIR_CONFIGURED = 4 /**< static library: the build's prefix */
} llmux_plugin_dir_source;

/** One directory of the plugin search. May grow at its end. */
typedef struct llmux_plugin_dir {
    const char *path;               /**< the directory; borrowed */
    llmux_plugin_dir_source source; /**< where it comes from */
    int exists;                     /**< 1 if it is a directory now */
} llmux_plugin_dir;

/** Receives one directory; return non-zero to stop the listing. */
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

/** Names of the bits in `caps`, comma-separated, into buf. Returns buf. */
LLMUX_EXTERN char *llmux_caps_string(uint64_t caps, char *buf, size_t len);

LLMUX_END_DECL

#endif /* LLMUX_PROVIDERS_H */
