//go:build ignore

// gen_images draws the widget's logos at the sizes amoCRM asks for
// (docs/amocrm.md §4.1): a plain two-tone mark, enough for the upload to
// pass and for a person to tell the widget apart. Run from this folder:
// go run gen_images.go
package main

import (
	"image"
	"image/color"
	"image/png"
	"log"
	"os"
	"path/filepath"

	amocrmwidget "github.com/switchboard/switchboard/web/amocrm-widget"
)

func main() {
	for name, size := range amocrmwidget.ImageSizes {
		if err := write(filepath.Join("images", name), size.X, size.Y); err != nil {
			log.Fatal(err)
		}
	}
}

func write(path string, w, h int) error {
	img := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{
		color.RGBA{0x13, 0x6f, 0x63, 0xff}, // background
		color.RGBA{0xff, 0xff, 0xff, 0xff}, // mark
	})
	// A white ring in the middle: the "switch" of Switchboard.
	cx, cy := w/2, h/2
	r := min(w, h) * 3 / 10
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			d := (x-cx)*(x-cx) + (y-cy)*(y-cy)
			if d <= r*r && d >= (r*2/3)*(r*2/3) {
				img.SetColorIndex(x, y, 1)
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
