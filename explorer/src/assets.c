/*
 * assets.c — lookup of embedded web files and their MIME types
 * (assets.h). A linear scan: there are a handful of files.
 */
#include "assets.h"

#include <string.h>

const ex_asset *ex_asset_find(const char *url_path)
{
    const char *p = url_path;
    while (*p == '/') p++;
    if (!*p) p = "index.html";
    if (strstr(p, "..")) return NULL;
    for (size_t i = 0; i < ex_web_asset_count; i++)
        if (strcmp(ex_web_assets[i].path, p) == 0) return &ex_web_assets[i];
    return NULL;
}

const char *ex_mime_type(const char *path)
{
    static const char *const map[][2] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
        {".json", "application/json"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
        {".ico", "image/x-icon"}, {".txt", "text/plain; charset=utf-8"}, {".md", "text/plain; charset=utf-8"},
        {".woff2", "font/woff2"}};
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(dot, map[i][0]) == 0) return map[i][1];
    return "application/octet-stream";
}
