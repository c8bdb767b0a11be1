# Packaging with CPack: `cpack -G DEB` in a build configured with
# -DCMAKE_INSTALL_PREFIX=/usr makes one Debian package per component,
# with dependencies computed by dpkg-shlibdeps:
#   libllmux0      the shared library, the providers and descriptors
#                  (/usr/lib/<multiarch>/llmux/plugins.d)
#   libllmux-dev   headers, pkg-config and CMake files, static libraries,
#                  the plugin template
#   llmux          the CLI and its shell completions
#   llmux-mock     the mock provider server (when LLMUX_INSTALL_MOCK)
#   llmux-doc      man pages, the API reference, examples
# A distribution package should configure with -DLLMUX_INSTALL_RPATH=OFF.
set(CPACK_PACKAGE_NAME llmux)
set(CPACK_PACKAGE_VENDOR "llmux")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Many LLM providers behind one small asynchronous C API")
set(CPACK_PACKAGE_CONTACT "llmux developers <llmux@localhost>")
set(CPACK_RESOURCE_FILE_LICENSE "${PROJECT_SOURCE_DIR}/LICENSE")
set(CPACK_STRIP_FILES OFF)
set(CPACK_SOURCE_IGNORE_FILES "/build[^/]*/" "/\\\\.git/")

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # <name>_<version>-<rel>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
# dpkg-shlibdeps must find libllmux.so.0 of this build, not an installed one
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS "${LLMUX_BUILD_LIB_DIR}")

set(CPACK_COMPONENTS_ALL runtime development tools docs)
if(LLMUX_INSTALL_MOCK)
  list(APPEND CPACK_COMPONENTS_ALL mock)
endif()
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME "libllmux${PROJECT_VERSION_MAJOR}")
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_NAME "libllmux-dev")
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME "llmux")
set(CPACK_DEBIAN_MOCK_PACKAGE_NAME "llmux-mock")
set(CPACK_DEBIAN_DOCS_PACKAGE_NAME "llmux-doc")
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_MOCK_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_DOCS_PACKAGE_SECTION doc)
set(CPACK_DEBIAN_DOCS_PACKAGE_ARCHITECTURE all)
# the -dev package needs the -dev packages of what llmux.pc requires
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_DEPENDS
    "libcurl4-openssl-dev | libcurl-dev, libuv1-dev, libjson-c-dev, libltdl-dev")
set(CPACK_COMPONENT_DEVELOPMENT_DEPENDS runtime)
set(CPACK_COMPONENT_TOOLS_DEPENDS runtime)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
    "llmux: the shared library and the in-tree provider plugins")
set(CPACK_COMPONENT_DEVELOPMENT_DESCRIPTION
    "llmux: headers, pkg-config and CMake files, the plugin template")
set(CPACK_COMPONENT_TOOLS_DESCRIPTION "llmux: the command-line tool")
set(CPACK_COMPONENT_MOCK_DESCRIPTION
    "llmux: a mock of the OpenAI, Mistral, Ollama and Aleph Alpha APIs")
set(CPACK_COMPONENT_DOCS_DESCRIPTION
    "llmux: man pages, API reference and examples")
include(CPack)
