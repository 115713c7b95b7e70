package clientapi

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"
)

// gradient is a w x h test image.
func gradient(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255})
		}
	}
	return img
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestMediaThumbnailHTTP(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "alice")
	src := encodePNG(t, gradient(400, 300))
	id := upload(t, base, tok, "image/png", "g.png", src)
	thumbURL := func(q string) string { return base + "/_matrix/media/v3/thumbnail/test.local/" + id + "?" + q }

	for _, tc := range []struct {
		query      string
		minW, minH int
		exactW     int
		exactH     int
	}{
		{"width=96&height=96&method=crop", 96, 96, 96, 96},
		{"width=32&height=32&method=crop", 32, 32, 32, 32},
		{"width=80&height=80&method=scale", 80, 80, 0, 80},
		{"width=320&height=100", 320, 100, 320, 240},
	} {
		resp, body := mediaDo(t, "GET", thumbURL(tc.query), "", "", nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("%s: %d %s", tc.query, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if kind, _ := disposition(t, resp); kind != "inline" {
			t.Fatalf("%s: disposition %s", tc.query, kind)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		if cfg.Width < tc.minW || cfg.Height < tc.minH || cfg.Width > 400 || cfg.Height > 300 ||
			tc.exactW != 0 && cfg.Width != tc.exactW || tc.exactH != 0 && cfg.Height != tc.exactH {
			t.Fatalf("%s: got %dx%d", tc.query, cfg.Width, cfg.Height)
		}
	}

	// Already small enough: the original, byte for byte (authenticated path too).
	resp, body := mediaDo(t, "GET", base+"/_matrix/client/v1/media/thumbnail/test.local/"+id+"?width=800&height=600", tok, "", nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, src) {
		t.Fatalf("large request: %d, %d bytes", resp.StatusCode, len(body))
	}

	for q, want := range map[string]string{
		"height=32":                      "M_MISSING_PARAM",
		"width=x&height=32":              "M_INVALID_PARAM",
		"width=-1&height=32":             "M_INVALID_PARAM",
		"width=32&height=32&method=zoom": "M_INVALID_PARAM",
	} {
		resp, body = mediaDo(t, "GET", thumbURL(q), "", "", nil)
		wantMatrixError(t, resp, body, 400, want)
	}
	textID := upload(t, base, tok, "text/plain", "", []byte("words"))
	resp, body = mediaDo(t, "GET", base+"/_matrix/media/v3/thumbnail/test.local/"+textID+"?width=32&height=32", "", "", nil)
	wantMatrixError(t, resp, body, 400, "M_UNKNOWN")
	badID := upload(t, base, tok, "image/png", "", []byte("encrypted bytes"))
	resp, body = mediaDo(t, "GET", base+"/_matrix/media/v3/thumbnail/test.local/"+badID+"?width=32&height=32", "", "", nil)
	wantMatrixError(t, resp, body, 400, "M_UNKNOWN")
}

func TestMakeThumbnailFormats(t *testing.T) {
	var jbuf bytes.Buffer
	if err := jpeg.Encode(&jbuf, gradient(200, 100), nil); err != nil {
		t.Fatal(err)
	}
	th, err := makeThumbnail(jbuf.Bytes(), thumbSpec{width: 50, height: 50, crop: true})
	if err != nil || th.ctype != "image/jpeg" {
		t.Fatalf("jpeg: %v %s", err, th.ctype)
	}
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(th.data)); err != nil || cfg.Width != 50 || cfg.Height != 50 {
		t.Fatalf("jpeg thumbnail %+v %v", cfg, err)
	}

	// A small GIF may be animated: returned as is only when animation is asked for.
	pal := image.NewPaletted(image.Rect(0, 0, 20, 10), color.Palette{color.Black, color.White})
	var gbuf bytes.Buffer
	if err := gif.Encode(&gbuf, pal, nil); err != nil {
		t.Fatal(err)
	}
	if th, err = makeThumbnail(gbuf.Bytes(), thumbSpec{width: 32, height: 32, animated: true}); err != nil || !bytes.Equal(th.data, gbuf.Bytes()) {
		t.Fatalf("animated gif: %v %s", err, th.ctype)
	}
	if th, err = makeThumbnail(gbuf.Bytes(), thumbSpec{width: 32, height: 32}); err != nil || th.ctype != "image/png" {
		t.Fatalf("static gif: %v %s", err, th.ctype)
	}

	// Oversized images are refused from their header alone.
	huge := encodePNG(t, image.NewGray(image.Rect(0, 0, 8000, 4001)))
	if _, err := makeThumbnail(huge, thumbSpec{width: 32, height: 32}); err != errTooLargeToThumbnail {
		t.Fatalf("huge: %v", err)
	}
	if isAPNG(encodePNG(t, gradient(4, 4))) {
		t.Fatal("plain PNG taken for APNG")
	}
}

func TestThumbGeometry(t *testing.T) {
	for _, tc := range []struct {
		w, h   int
		spec   thumbSpec
		region image.Rectangle
		dw, dh int
	}{
		{400, 300, thumbSpec{width: 96, height: 96, crop: true}, image.Rect(50, 0, 350, 300), 96, 96},
		{300, 400, thumbSpec{width: 96, height: 96, crop: true}, image.Rect(0, 50, 300, 350), 96, 96},
		{100, 50, thumbSpec{width: 96, height: 96, crop: true}, image.Rect(25, 0, 75, 50), 50, 50},
		{400, 300, thumbSpec{width: 80, height: 80}, image.Rect(0, 0, 400, 300), 107, 80},
		{300, 400, thumbSpec{width: 80, height: 80}, image.Rect(0, 0, 300, 400), 80, 107},
		{1000, 100, thumbSpec{width: 320, height: 240}, image.Rect(0, 0, 1000, 100), 1000, 100},
		{64, 64, thumbSpec{width: 96, height: 96, crop: true}, image.Rect(0, 0, 64, 64), 64, 64},
	} {
		region, dw, dh := thumbGeometry(tc.w, tc.h, tc.spec)
		if region != tc.region || dw != tc.dw || dh != tc.dh {
			t.Errorf("%dx%d %+v: got %v %dx%d", tc.w, tc.h, tc.spec, region, dw, dh)
		}
	}
}

func TestBoxScaleAverages(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 4, 2))
	for x := 0; x < 4; x++ {
		for y := 0; y < 2; y++ {
			v := uint8(0)
			if x%2 == 1 {
				v = 200
			}
			src.Set(x, y, color.RGBA{v, v, v, 255})
		}
	}
	out := boxScale(src, src.Bounds(), 2, 1)
	for x := 0; x < 2; x++ {
		if c := out.RGBAAt(x, 0); c.R != 100 || c.A != 255 {
			t.Fatal(fmt.Sprint("pixel ", x, " = ", c))
		}
	}
}
