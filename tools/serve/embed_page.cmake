# Turns the gateway's page (IN, tools/serve/page.html) into a C file (OUT)
# with the page's bytes and its Content-Security-Policy: the sha256 hashes
# of its one inline <script> and one inline <style> are computed here, so
# the page can stay a plain, reviewable HTML file and the CSP still lets
# only those two run (no 'unsafe-inline'). Run as cmake -DIN=.. -DOUT=.. -P.
cmake_minimum_required(VERSION 3.13)

# base64 of the bytes written as hex digits `hex` into `var`
function(hex_to_base64 hex var)
  set(abc "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
  string(LENGTH "${hex}" n)
  set(out "")
  set(i 0)
  while(i LESS n)
    math(EXPR left "${n} - ${i}")
    if(left GREATER 6)
      set(left 6)
    endif()
    string(SUBSTRING "${hex}" ${i} ${left} group)
    # pad the last group to 3 bytes; the '=' below marks what was padding
    set(pad "")
    if(left EQUAL 2)
      set(group "${group}0000")
      set(pad "==")
    elseif(left EQUAL 4)
      set(group "${group}00")
      set(pad "=")
    endif()
    math(EXPR v "0x${group}")
    foreach(shift 18 12 6 0)
      math(EXPR k "(${v} >> ${shift}) & 63")
      string(SUBSTRING "${abc}" ${k} 1 c)
      string(APPEND out "${c}")
    endforeach()
    if(pad)
      string(LENGTH "${pad}" np)
      string(LENGTH "${out}" no)
      math(EXPR keep "${no} - ${np}")
      string(SUBSTRING "${out}" 0 ${keep} out)
      string(APPEND out "${pad}")
    endif()
    math(EXPR i "${i} + 6")
  endwhile()
  set(${var} "${out}" PARENT_SCOPE)
endfunction()

# the CSP source for the text of the one <tag>...</tag> element of `page`
function(inline_hash page tag var)
  string(FIND "${page}" "<${tag}>" a)
  string(FIND "${page}" "<${tag}>" a2 REVERSE)
  string(FIND "${page}" "</${tag}>" b)
  if(a EQUAL -1 OR b EQUAL -1 OR NOT a EQUAL a2 OR b LESS a)
    message(FATAL_ERROR "${IN}: want exactly one plain <${tag}> element")
  endif()
  string(LENGTH "<${tag}>" tl)
  math(EXPR a "${a} + ${tl}")
  math(EXPR len "${b} - ${a}")
  string(SUBSTRING "${page}" ${a} ${len} body)
  string(SHA256 hex "${body}")
  hex_to_base64("${hex}" b64)
  set(${var} "'sha256-${b64}'" PARENT_SCOPE)
endfunction()

file(READ "${IN}" page)
if(page MATCHES "style=\"|<script [^>]*src|<link[^>]*stylesheet")
  message(FATAL_ERROR "${IN}: no style attributes or outside scripts and "
                      "stylesheets: the CSP allows only the inline two")
endif()
inline_hash("${page}" script script_src)
inline_hash("${page}" style style_src)
# default-src 'self' covers fetch() to the gateway itself; nothing may
# frame the page, change its base URL or post a form elsewhere.
set(csp "default-src 'self'; script-src ${script_src}; style-src ${style_src}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR n "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# 16 bytes a line keeps the generated file readable in a diff tool
string(REGEX REPLACE "((0x..,){16})" "\\1\n    " bytes "${bytes}")
file(WRITE "${OUT}.tmp"
  "/* Generated from tools/serve/page.html by embed_page.cmake: do not edit. */\n"
  "#include <stddef.h>\n\n"
  "extern const unsigned char serve_page_html[];\n"
  "extern const size_t serve_page_html_len;\n"
  "extern const char serve_page_csp[];\n\n"
  "const unsigned char serve_page_html[] = {\n    ${bytes}\n};\n"
  "const size_t serve_page_html_len = ${n};\n"
  "const char serve_page_csp[] =\n    \"${csp}\";\n")
# only a changed page rebuilds what depends on it
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
