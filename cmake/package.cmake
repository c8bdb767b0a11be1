# Packaging with CPack: `cpack -G DEB` in a build configured with
# -DCMAKE_INSTALL_PREFIX=/usr makes one Debian package per component,
# with dependencies computed by dpkg-shlibdeps:
#   libllmux0      the shared library, the providers and descriptors
#                  (/usr/lib/<multiarch>/llmux/plugins.d)
#   libllmux-dev   headers, pkg-config and CMake files, static libraries,
#                  the plugin template, llmux-plugin(7)
#   llmux          the CLI, llmux(1) and its shell completions
#   llmux-mock     the mock provider server (when LLMUX_INSTALL_MOCK)
#   llmux-doc      the API reference, examples
# A distribution package should configure with -DLLMUX_INSTALL_RPATH=OFF.
set(CPACK_PACKAGE_NAME llmux)
set(CPACK_PACKAGE_VENDOR "llmux")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Many LLM providers behind one small asynchronous C API")
set(CPACK_PACKAGE_CONTACT "llmux developers <llmux@localhost>")
set(CPACK_RESOURCE_FILE_LICENSE "${PROJECT_SOURCE_DIR}/LICENSE")
# the packages carry stripped files; the debug information goes into
# -dbgsym packages (.ddeb), as Debian's own builds do
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_DEBUGINFO_PACKAGE ON)
set(CPACK_SOURCE_IGNORE_FILES "/build[^/]*/" "/\\\\.git/")

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # <name>_<version>-<rel>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
# dpkg-shlibdeps must find libllmux.so.0 of this build, not an installed
# one (CMake 3.20 and later; older ones find it through the package tree)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS "${LLMUX_BUILD_LIB_DIR}")

# ldconfig through the trigger (as Debian policy asks) instead of the
# postinst/postrm scripts CPack would write
file(WRITE "${PROJECT_BINARY_DIR}/deb/triggers" "activate-noawait ldconfig\n")
file(WRITE "${PROJECT_BINARY_DIR}/deb/postinst" "#!/bin/sh\nset -e\n")
file(WRITE "${PROJECT_BINARY_DIR}/deb/postrm" "#!/bin/sh\nset -e\n")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA
    "${PROJECT_BINARY_DIR}/deb/triggers;${PROJECT_BINARY_DIR}/deb/postinst;${PROJECT_BINARY_DIR}/deb/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

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
    "libcurl4-openssl-dev | libcurl-dev, libuv1-dev, libjson-c-dev, libltdl-dev, libssl-dev")
set(CPACK_COMPONENT_DEVELOPMENT_DEPENDS runtime)
set(CPACK_COMPONENT_TOOLS_DEPENDS runtime)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
    "llmux: the shared library and the in-tree provider plugins")
set(CPACK_COMPONENT_DEVELOPMENT_DESCRIPTION
    "llmux: headers, pkg-config and CMake files, the plugin template")
set(CPACK_COMPONENT_TOOLS_DESCRIPTION
    "llmux: the command-line tool and the OpenAI-compatible gateway")
set(CPACK_COMPONENT_MOCK_DESCRIPTION
    "llmux: a mock of the OpenAI, Mistral, Ollama and Aleph Alpha APIs")
set(CPACK_COMPONENT_DOCS_DESCRIPTION
    "llmux: API reference and examples")
# LLMUX_DEBIAN_FILES: what every Debian package must carry in
# /usr/share/doc/<package>: the copyright and a changelog.Debian.gz (and
# its man pages gzipped, docs/CMakeLists.txt)
if(LLMUX_DEBIAN_FILES)
  string(TIMESTAMP LLMUX_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
  file(WRITE "${PROJECT_BINARY_DIR}/deb/changelog.Debian"
"llmux (${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}) unstable; urgency=medium

  * Built with CPack from the llmux source tree. The project's own
    changes are in CHANGELOG.md (package llmux-doc).

 -- ${CPACK_PACKAGE_CONTACT}  ${LLMUX_DEB_DATE}
")
  execute_process(COMMAND gzip -9nc "${PROJECT_BINARY_DIR}/deb/changelog.Debian"
    OUTPUT_FILE "${PROJECT_BINARY_DIR}/deb/changelog.Debian.gz"
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gzip failed: ${rc}")
  endif()
  foreach(c ${CPACK_COMPONENTS_ALL})
    string(TOUPPER ${c} C)
    set(pkg ${CPACK_DEBIAN_${C}_PACKAGE_NAME})
    install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${pkg}
            RENAME copyright COMPONENT ${c})
    install(FILES "${PROJECT_BINARY_DIR}/deb/changelog.Debian.gz"
            DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${pkg} COMPONENT ${c})
  endforeach()
endif()
include(CPack)
