# bpf_object(NAME SRC): compile SRC with clang -target bpf into NAME.bpf.o
# and generate NAME.skel.h with bpftool; vmlinux.h is generated from the
# running kernel's BTF at build time (never checked in).
find_program(CLANG_EXE NAMES clang clang-16 clang-15 clang-14 REQUIRED)
find_program(BPFTOOL_EXE NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

execute_process(COMMAND uname -m OUTPUT_VARIABLE _arch OUTPUT_STRIP_TRAILING_WHITESPACE)
if(_arch STREQUAL "x86_64")
  set(BPF_TARGET_ARCH x86)
elseif(_arch STREQUAL "aarch64")
  set(BPF_TARGET_ARCH arm64)
else()
  set(BPF_TARGET_ARCH ${_arch})
endif()

set(VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH "kernel BTF used to generate vmlinux.h")
set(VMLINUX_H ${CMAKE_CURRENT_BINARY_DIR}/vmlinux/vmlinux.h)
add_custom_command(OUTPUT ${VMLINUX_H}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/vmlinux
  COMMAND ${BPFTOOL_EXE} btf dump file ${VMLINUX_BTF} format c > ${VMLINUX_H}
  COMMENT "Generating vmlinux.h from ${VMLINUX_BTF}")

function(bpf_object name src)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  file(GLOB _hdrs ${CMAKE_CURRENT_SOURCE_DIR}/bpf/*.h ${CMAKE_CURRENT_SOURCE_DIR}/include/*.h)
  add_custom_command(OUTPUT ${obj}
    COMMAND ${CLANG_EXE} -g -O2 -target bpf -D__TARGET_ARCH_${BPF_TARGET_ARCH}
            -I${CMAKE_CURRENT_BINARY_DIR}/vmlinux -I${CMAKE_CURRENT_SOURCE_DIR}/include
            -I${CMAKE_CURRENT_SOURCE_DIR}/bpf -Wall -Werror -c ${src} -o ${obj}
    DEPENDS ${src} ${VMLINUX_H} ${_hdrs}
    COMMENT "BPF ${name}.bpf.o")
  add_custom_command(OUTPUT ${skel}
    COMMAND ${BPFTOOL_EXE} gen skeleton ${obj} name ${name}_bpf > ${skel}
    DEPENDS ${obj}
    COMMENT "Skeleton ${name}.skel.h")
  add_custom_target(${name}_skel DEPENDS ${skel})
endfunction()
