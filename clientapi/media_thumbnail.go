package clientapi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"mime"
	"net/http"
	"strconv"
	"sync"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// Thumbnails are computed on request from PNG, JPEG and GIF uploads with
// the standard library (a box filter, no extra dependency) and kept in a
// small in-memory cache: avatars are asked for again and again.

const (
	// maxThumbnailPixels refuses images whose decoded form would take too
	// much memory (checked from the header before decoding).
	maxThumbnailPixels = 32_000_000
	thumbnailWorkers   = 4
	thumbCacheBytes    = 32 << 20
	thumbJPEGQuality   = 85
)

var (
	errCannotThumbnail     = errors.New("cannot generate thumbnails for the requested content")
	errTooLargeToThumbnail = errors.New("content is too large to thumbnail")

	thumbnailable = map[string]bool{"image/png": true, "image/apng": true, "image/jpeg": true,
		"image/jpg": true, "image/gif": true}
)

// thumbSpec is what a thumbnail request asks for.
type thumbSpec struct {
	width, height int
	crop          bool
	animated      bool
}

type thumb struct {
	data  []byte
	ctype string
}

// thumbnailMedia serves GET .../thumbnail/{serverName}/{mediaId}.
func (a *API) thumbnailMedia(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	spec, ok := parseThumbSpec(w, r)
	if !ok {
		return
	}
	rec, ok := a.mediaForRead(w, r, p)
	if !ok {
		return
	}
	cacheKey := fmt.Sprintf("%s/%+v", p.ByName("mediaId"), spec)
	t, hit := a.thumbs.get(cacheKey)
	if !hit {
		var err error
		if t, err = a.renderThumbnail(r, rec, spec); err != nil {
			switch {
			case errors.Is(err, errTooLargeToThumbnail):
				writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", err.Error())
			case errors.Is(err, errCannotThumbnail):
				writeError(w, http.StatusBadRequest, "M_UNKNOWN", err.Error())
			default:
				writeErr(w, err)
			}
			return
		}
		a.thumbs.put(cacheKey, t)
	}
	ext := map[string]string{"image/jpeg": "jpg", "image/gif": "gif"}[t.ctype]
	if ext == "" {
		ext = "png"
	}
	setMediaHeaders(w, r, t.ctype, `inline; filename="thumbnail.`+ext+`"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(t.data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(t.data)
}

// renderThumbnail loads the upload and makes its thumbnail, a bounded
// number at a time.
func (a *API) renderThumbnail(r *http.Request, rec *fsm.MediaRecord, spec thumbSpec) (thumb, error) {
	if base, _, _ := mime.ParseMediaType(rec.ContentType); !thumbnailable[base] {
		return thumb{}, errCannotThumbnail
	}
	select {
	case a.thumbSlots <- struct{}{}:
		defer func() { <-a.thumbSlots }()
	case <-r.Context().Done():
		return thumb{}, r.Context().Err()
	}
	src, err := (&mediaReader{store: a.store, rec: rec}).readAll()
	if err != nil {
		return thumb{}, err
	}
	return makeThumbnail(src, spec)
}

func parseThumbSpec(w http.ResponseWriter, r *http.Request) (thumbSpec, bool) {
	q := r.URL.Query()
	var spec thumbSpec
	for _, dim := range []struct {
		name string
		v    *int
	}{{"width", &spec.width}, {"height", &spec.height}} {
		raw := q.Get(dim.name)
		if raw == "" {
			writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", dim.name+" is required")
			return spec, false
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", dim.name+" must be a positive integer")
			return spec, false
		}
		*dim.v = n
	}
	switch q.Get("method") {
	case "", "scale":
	case "crop":
		spec.crop = true
	default:
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "method must be crop or scale")
		return spec, false
	}
	spec.animated = q.Get("animated") == "true"
	return spec, true
}

// makeThumbnail scales or crops src per spec. It returns src itself when
// no resizing is needed, unless src may be animated and animation was not
// asked for (then its first frame, re-encoded).
func makeThumbnail(src []byte, spec thumbSpec) (thumb, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(src))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		return thumb{}, errCannotThumbnail
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxThumbnailPixels {
		return thumb{}, errTooLargeToThumbnail
	}
	region, dw, dh := thumbGeometry(cfg.Width, cfg.Height, spec)
	whole := region.Dx() == cfg.Width && region.Dy() == cfg.Height && dw == cfg.Width && dh == cfg.Height
	mayAnimate := format == "gif" || format == "png" && isAPNG(src)
	if whole && (!mayAnimate || spec.animated) {
		return thumb{data: src, ctype: "image/" + format}, nil
	}
	var img image.Image
	switch format {
	case "png":
		img, err = png.Decode(bytes.NewReader(src))
	case "jpeg":
		img, err = jpeg.Decode(bytes.NewReader(src))
	case "gif":
		img, err = gif.Decode(bytes.NewReader(src)) // the first frame
	default:
		return thumb{}, errCannotThumbnail
	}
	if err != nil {
		return thumb{}, errCannotThumbnail
	}
	out := boxScale(img, region.Add(img.Bounds().Min), dw, dh)
	var buf bytes.Buffer
	if format == "jpeg" {
		err = jpeg.Encode(&buf, out, &jpeg.Options{Quality: thumbJPEGQuality})
		return thumb{data: buf.Bytes(), ctype: "image/jpeg"}, err
	}
	err = png.Encode(&buf, out)
	return thumb{data: buf.Bytes(), ctype: "image/png"}, err
}

// thumbGeometry picks the source region and output size for a w x h image.
// Both methods cover the requested box, never upscale, and keep the
// source's aspect (scale) or the requested one (crop, centred).
func thumbGeometry(w, h int, spec thumbSpec) (region image.Rectangle, dw, dh int) {
	full := image.Rect(0, 0, w, h)
	W, H, tw, th := int64(w), int64(h), int64(spec.width), int64(spec.height)
	if W <= tw && H <= th {
		return full, w, h
	}
	if !spec.crop {
		if tw*H >= th*W { // width is the binding side
			if tw >= W {
				return full, w, h
			}
			return full, spec.width, int(min((H*tw+W-1)/W, H))
		}
		if th >= H {
			return full, w, h
		}
		return full, int(min((W*th+H-1)/H, W)), spec.height
	}
	// The largest centred region with the requested aspect.
	rw, rh := W, H
	if W*th > H*tw {
		rw = max(1, min(W, (H*tw+th/2)/th))
	} else {
		rh = max(1, min(H, (W*th+tw/2)/tw))
	}
	x0, y0 := (W-rw)/2, (H-rh)/2
	region = image.Rect(int(x0), int(y0), int(x0+rw), int(y0+rh))
	return region, int(min(tw, rw)), int(min(th, rh))
}

// boxScale averages the pixels of src's region r down to dw x dh (each no
// larger than r's). Source rows are converted a strip at a time, so memory
// stays at one strip plus the output.
func boxScale(src image.Image, r image.Rectangle, dw, dh int) *image.RGBA {
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	rw, rh := r.Dx(), r.Dy()
	xs := make([]int, dw+1)
	for i := range xs {
		xs[i] = i * rw / dw
	}
	strip := image.NewRGBA(image.Rect(0, 0, rw, rh/dh+1))
	for dy := 0; dy < dh; dy++ {
		y0, y1 := dy*rh/dh, (dy+1)*rh/dh
		rows := y1 - y0
		draw.Draw(strip, image.Rect(0, 0, rw, rows), src, image.Pt(r.Min.X, r.Min.Y+y0), draw.Src)
		out := dst.Pix[dy*dst.Stride:]
		for dx := 0; dx < dw; dx++ {
			var sum [4]uint64
			for y := 0; y < rows; y++ {
				row := strip.Pix[y*strip.Stride:]
				for x := xs[dx]; x < xs[dx+1]; x++ {
					px := row[4*x : 4*x+4 : 4*x+4]
					sum[0] += uint64(px[0])
					sum[1] += uint64(px[1])
					sum[2] += uint64(px[2])
					sum[3] += uint64(px[3])
				}
			}
			n := uint64(rows * (xs[dx+1] - xs[dx]))
			for c := 0; c < 4; c++ {
				out[4*dx+c] = uint8((sum[c] + n/2) / n)
			}
		}
	}
	return dst
}

// isAPNG reports an animation control chunk before the first image data.
func isAPNG(src []byte) bool {
	off := 8 // signature
	for off+8 <= len(src) {
		n := int64(binary.BigEndian.Uint32(src[off:]))
		switch string(src[off+4 : off+8]) {
		case "acTL":
			return true
		case "IDAT":
			return false
		}
		if n > int64(len(src)) {
			return false
		}
		off += 12 + int(n)
	}
	return false
}

// thumbCache keeps recent thumbnails up to max bytes, oldest out first.
type thumbCache struct {
	mu    sync.Mutex
	max   int
	size  int
	m     map[string]thumb
	order []string
}

func (c *thumbCache) get(k string) (thumb, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[k]
	return t, ok
}

func (c *thumbCache) put(k string, t thumb) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok || len(t.data) > c.max/8 {
		return
	}
	c.m[k] = t
	c.order = append(c.order, k)
	c.size += len(t.data)
	for c.size > c.max && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		c.size -= len(c.m[old].data)
		delete(c.m, old)
	}
}
