# beckonConfigVersion.cmake: which find_package(beckon <version>) requests the
# installed libbeckon satisfies. The version is read from the installed
# beckon.h, so it can never disagree with the library's headers.
#
# Compatibility follows the SONAME (docs/INSTALL.md): any release with the same
# major version is compatible with an older or equal request, e.g. 0.3.1
# satisfies find_package(beckon 0.1) but not find_package(beckon 1.0); an
# EXACT request must match all three numbers.

get_filename_component(_beckon_header "${CMAKE_CURRENT_LIST_DIR}/../../../include/beckon/beckon.h" ABSOLUTE)
set(PACKAGE_VERSION "")
if(EXISTS "${_beckon_header}")
  file(STRINGS "${_beckon_header}" _beckon_version_line
    REGEX "^#define BECKON_VERSION \"[0-9]+\\.[0-9]+\\.[0-9]+\"")
  string(REGEX REPLACE "^#define BECKON_VERSION \"([0-9.]+)\".*" "\\1" PACKAGE_VERSION "${_beckon_version_line}")
  unset(_beckon_version_line)
endif()
unset(_beckon_header)

if(PACKAGE_VERSION STREQUAL "")
  set(PACKAGE_VERSION "0")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
  return()
endif()

set(PACKAGE_VERSION_COMPATIBLE FALSE)
set(PACKAGE_VERSION_EXACT FALSE)
if(NOT PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
else()
  string(REGEX MATCH "^[0-9]+" _beckon_major "${PACKAGE_VERSION}")
  if(PACKAGE_FIND_VERSION_MAJOR STREQUAL _beckon_major
      AND NOT PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION)
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
  endif()
  if(PACKAGE_VERSION VERSION_EQUAL PACKAGE_FIND_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
  unset(_beckon_major)
endif()
