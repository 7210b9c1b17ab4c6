package nginx

import (
	"embed"
	"io/fs"
)

//go:embed html
var html embed.FS

// builtinPages is the image's own /usr/share/nginx/html.
var builtinPages = mustSub(html, "html")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the embedded directory is part of the build
	}
	return sub
}
