# beckonConfig.cmake: find_package(beckon) for an installed libbeckon.
#
# Installed by `cargo cinstall` as <prefix>/share/cmake/beckon/beckonConfig.cmake
# (with beckonConfigVersion.cmake beside it). Defines:
#
#   beckon::beckon          the shared library (libbeckon.so.0), with the
#                           include directory holding beckon.h and beckon.hpp
#   beckon::beckon_static   the static library (libbeckon.a) and the system
#                           libraries it needs, when it was installed
#   beckon_VERSION          e.g. 0.1.0 (from the installed beckon.h)
#   beckon_INCLUDE_DIR, beckon_LIBRARY, beckon_STATIC_LIBRARY
#
# Usage:
#   find_package(beckon 0.1 REQUIRED)
#   target_link_libraries(app PRIVATE beckon::beckon)
#   # C++ users: #include "beckon.hpp" and compile as C++17 or later.
#
# The files are found relative to this one: the layout cargo-c installs under
# one prefix (include/beckon/, and lib/, lib64/ or lib/<multiarch>/). Unix-like
# systems (Linux, the BSDs, macOS) are supported.

# Needs CMake 3.15 (list(PREPEND)); checked without cmake_minimum_required,
# which would reset the policies of the project that includes this file.
if(CMAKE_VERSION VERSION_LESS 3.15)
  set(beckon_FOUND FALSE)
  set(beckon_NOT_FOUND_MESSAGE "the beckon CMake package needs CMake 3.15 or later")
  return()
endif()

get_filename_component(_beckon_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

set(_beckon_libdirs "${_beckon_prefix}/lib")
if(CMAKE_LIBRARY_ARCHITECTURE)
  list(PREPEND _beckon_libdirs "${_beckon_prefix}/lib/${CMAKE_LIBRARY_ARCHITECTURE}")
endif()
list(APPEND _beckon_libdirs "${_beckon_prefix}/lib64")

find_path(beckon_INCLUDE_DIR NAMES beckon.h
  PATHS "${_beckon_prefix}/include/beckon" NO_DEFAULT_PATH)
find_library(beckon_LIBRARY
  NAMES "${CMAKE_SHARED_LIBRARY_PREFIX}beckon${CMAKE_SHARED_LIBRARY_SUFFIX}"
  PATHS ${_beckon_libdirs} NO_DEFAULT_PATH)
find_library(beckon_STATIC_LIBRARY
  NAMES "${CMAKE_STATIC_LIBRARY_PREFIX}beckon${CMAKE_STATIC_LIBRARY_SUFFIX}"
  PATHS ${_beckon_libdirs} NO_DEFAULT_PATH)
mark_as_advanced(beckon_INCLUDE_DIR beckon_LIBRARY beckon_STATIC_LIBRARY)

if(NOT beckon_INCLUDE_DIR OR NOT beckon_LIBRARY)
  set(beckon_FOUND FALSE)
  set(beckon_NOT_FOUND_MESSAGE
    "libbeckon is incomplete under ${_beckon_prefix}: beckon.h: ${beckon_INCLUDE_DIR}, library: ${beckon_LIBRARY}")
  unset(_beckon_prefix)
  unset(_beckon_libdirs)
  return()
endif()

file(STRINGS "${beckon_INCLUDE_DIR}/beckon.h" _beckon_version_line
  REGEX "^#define BECKON_VERSION \"[0-9]+\\.[0-9]+\\.[0-9]+\"")
string(REGEX REPLACE "^#define BECKON_VERSION \"([0-9.]+)\".*" "\\1" beckon_VERSION "${_beckon_version_line}")

include(CMakeFindDependencyMacro)
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_dependency(Threads)

if(NOT TARGET beckon::beckon)
  add_library(beckon::beckon SHARED IMPORTED)
  set_target_properties(beckon::beckon PROPERTIES
    IMPORTED_LOCATION "${beckon_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${beckon_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
endif()

if(beckon_STATIC_LIBRARY AND NOT TARGET beckon::beckon_static)
  # What Rust's standard library needs from the system when linked statically
  # (`rustc --print native-static-libs`).
  set(_beckon_system_libs Threads::Threads ${CMAKE_DL_LIBS})
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    list(APPEND _beckon_system_libs m rt util gcc_s)
  elseif(APPLE)
    list(APPEND _beckon_system_libs "-framework CoreFoundation" "-framework Security" iconv)
  else()
    list(APPEND _beckon_system_libs m)
  endif()
  add_library(beckon::beckon_static STATIC IMPORTED)
  set_target_properties(beckon::beckon_static PROPERTIES
    IMPORTED_LOCATION "${beckon_STATIC_LIBRARY}"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "${beckon_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${_beckon_system_libs}")
  unset(_beckon_system_libs)
endif()

unset(_beckon_version_line)
unset(_beckon_prefix)
unset(_beckon_libdirs)
