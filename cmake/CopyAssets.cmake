# SPDX-License-Identifier: MIT
#
# CopyAssets.cmake - the browser assets the HTML report (src/report_html.c)
# inlines, copied into the build's assets directory at every build:
#
#   cmake -DWEB=<source>/web -DDST=<build>/assets -P CopyAssets.cmake
#
# echarts.min.js, d3.min.js and d3-flamegraph.umd.min.js (the flame graphs
# of a trace with stacks) come from web/node_modules (npm ci in web/, done
# by scripts/deps-web.sh); giltrace-report.js/.css are ours (web/src/). A
# missing file is only reported: the build goes on, and `giltrace --html`
# says what to install. Files are rewritten only when they changed.
set(files
  "${WEB}/node_modules/echarts/dist/echarts.min.js"
  "${WEB}/node_modules/d3/dist/d3.min.js"
  "${WEB}/node_modules/d3-flame-graph/dist/d3-flamegraph.umd.min.js"
  "${WEB}/src/giltrace-report.js"
  "${WEB}/src/giltrace-report.css")
file(MAKE_DIRECTORY "${DST}")
foreach(f ${files})
  get_filename_component(name "${f}" NAME)
  if(EXISTS "${f}")
    configure_file("${f}" "${DST}/${name}" COPYONLY)
  else()
    message(STATUS "giltrace: ${f} is missing, --html will not work:"
                   " run scripts/deps-web.sh (npm ci in web/)")
  endif()
endforeach()
