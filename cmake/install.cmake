# The installable library (README "Using mixreg as a library"): libmixreg.a
# and libmixreg.so from one set of position-independent objects, the public
# headers with an umbrella header, a pkg-config file and a CMake package, so
#   cc prog.c $(pkg-config --cflags --libs mixreg)      and      find_package(mixreg)
# both work. Only the public API (names mx_*) is exported from the shared
# library: everything else is internal and may change.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set_target_properties(mixreg_lib PROPERTIES POSITION_INDEPENDENT_CODE ON)

# One header that includes every public one, generated from the folder so a
# new module's header is never forgotten.
file(GLOB MIXREG_PUBLIC_HEADERS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/include/mixreg/*.h)
set(MIXREG_UMBRELLA_INCLUDES "")
foreach(header ${MIXREG_PUBLIC_HEADERS})
  get_filename_component(name ${header} NAME)
  string(APPEND MIXREG_UMBRELLA_INCLUDES "#include \"mixreg/${name}\"\n")
endforeach()
configure_file(${CMAKE_SOURCE_DIR}/cmake/mixreg.h.in ${CMAKE_BINARY_DIR}/include/mixreg/mixreg.h @ONLY)
target_include_directories(mixreg_lib PUBLIC $<BUILD_INTERFACE:${CMAKE_BINARY_DIR}/include>)

add_library(mixreg_shared SHARED $<TARGET_OBJECTS:mixreg_lib>)
get_target_property(MIXREG_LINK_LIBRARIES mixreg_lib LINK_LIBRARIES)
target_link_libraries(mixreg_shared PRIVATE ${MIXREG_LINK_LIBRARIES})
set_target_properties(mixreg_shared PROPERTIES OUTPUT_NAME mixreg VERSION ${PROJECT_VERSION}
                      SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
target_link_options(mixreg_shared PRIVATE -Wl,--version-script=${CMAKE_SOURCE_DIR}/cmake/exports.map -Wl,--no-undefined)
set_target_properties(mixreg_shared PROPERTIES LINK_DEPENDS ${CMAKE_SOURCE_DIR}/cmake/exports.map)

install(TARGETS mixreg_lib mixreg_shared
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${MIXREG_PUBLIC_HEADERS} ${CMAKE_BINARY_DIR}/include/mixreg/mixreg.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mixreg)

# pkg-config: the shared library by default; `pkg-config --static` adds what
# libmixreg.a needs (oneDNN ships no .pc file, so it is named directly).
set(MIXREG_PC_REQUIRES_PRIVATE "openblas libcjson cairo fontconfig libjpeg libpng zlib")
set(MIXREG_PC_LIBS_PRIVATE "-ldnnl -fopenmp -lpthread -lm")
if(MIXREG_WITH_MPI)
  string(APPEND MIXREG_PC_REQUIRES_PRIVATE " ompi-c")
endif()
if(MIXREG_WITH_CUDA)
  # The cuda backend's device layer (model creation asks it for a device):
  # the static CUDA runtime by path (CUDA ships no .pc file, and its lib
  # directory is often not on the linker's path).
  string(APPEND MIXREG_PC_LIBS_PRIVATE " ${CUDAToolkit_LIBRARY_DIR}/libcudart_static.a -ldl -lrt")
endif()
file(RELATIVE_PATH MIXREG_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" MIXREG_PC_TO_PREFIX "${MIXREG_PC_TO_PREFIX}")
configure_file(${CMAKE_SOURCE_DIR}/cmake/mixreg.pc.in ${CMAKE_BINARY_DIR}/mixreg.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/mixreg.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# CMake: find_package(mixreg) gives mixreg::mixreg (the shared library).
set_target_properties(mixreg_shared PROPERTIES EXPORT_NAME mixreg)
target_include_directories(mixreg_shared INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
install(TARGETS mixreg_shared EXPORT mixregTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT mixregTargets NAMESPACE mixreg:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mixreg)
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/mixregConfig.cmake.in ${CMAKE_BINARY_DIR}/mixregConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mixreg)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/mixregConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/mixregConfig.cmake ${CMAKE_BINARY_DIR}/mixregConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mixreg)
