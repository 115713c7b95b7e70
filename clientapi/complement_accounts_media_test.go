package clientapi

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"mime"
	"net/url"
	"strings"
	"testing"
)

// Reproductions of Complement's tests/csapi/apidoc_content_test.go,
// media_async_uploads_test.go, media_misc_test.go (TestMediaConfig) and
// tests/media_filename_test.go, media_thumbnail_test.go,
// media_nofilename_test.go (their single-server cases).

// cmPNG is a w×h PNG, like Complement's data.MatrixPng / data.LargePng.
func cmPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := 0; x < w; x++ {
		for y := 0; y < h; y++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 200, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (c *cmClient) uploadContent(t *testing.T, body []byte, filename, ctype string) string {
	t.Helper()
	q := url.Values{}
	if filename != "" {
		q.Set("filename", filename)
	}
	r := c.mustDo(t, "POST", []string{"_matrix", "media", "v3", "upload"}, cmRaw(body), cmContentType(ctype), cmQuery(q))
	return r.str("content_uri")
}

func cmSplitMxc(mxc string) (string, string) {
	origin, id, _ := strings.Cut(strings.TrimPrefix(mxc, "mxc://"), "/")
	return origin, id
}

// download fetches over /_matrix/media/v3 or, authenticated, over
// /_matrix/client/v1/media.
func (c *cmClient) download(t *testing.T, mxc string, authenticated bool, extra ...string) cmResp {
	t.Helper()
	origin, id := cmSplitMxc(mxc)
	path := []string{"_matrix", "media", "v3", "download", origin, id}
	if authenticated {
		path = []string{"_matrix", "client", "v1", "media", "download", origin, id}
	}
	return c.mustDo(t, "GET", append(path, extra...))
}

func TestComplementContent(t *testing.T) {
	d := cmDeploy(t)
	alice := d.register(t, "", "", false)
	pic := cmPNG(t, 8, 8)

	t.Run("TestContent", func(t *testing.T) {
		mxc := alice.uploadContent(t, pic, "test.png", "image/png")
		r := alice.download(t, mxc, false)
		if !bytes.Equal(r.body, pic) || r.header.Get("Content-Type") != "image/png" {
			t.Fatalf("got %q %d bytes", r.header.Get("Content-Type"), len(r.body))
		}
	})
	t.Run("TestContentCSAPIMediaV1", func(t *testing.T) {
		mxc := alice.uploadContent(t, pic, "test.png", "img/png")
		r := alice.download(t, mxc, true)
		if !bytes.Equal(r.body, pic) || r.header.Get("Content-Type") != "img/png" {
			t.Fatalf("got %q %d bytes", r.header.Get("Content-Type"), len(r.body))
		}
		anon := d.unauthed()
		cmWant(t, "no token", anon.do(t, "GET", []string{"_matrix", "client", "v1", "media", "download", "hs1", mxc}), 401, "")
	})
	t.Run("TestMediaConfig", func(t *testing.T) {
		r := alice.mustDo(t, "GET", []string{"_matrix", "media", "r0", "config"})
		if !r.get(gjsonEscape("m.upload.size")).Exists() || r.get(gjsonEscape("m.upload.size")).Type.String() != "Number" {
			t.Fatalf("got %s", r.body)
		}
	})
}

func TestComplementAsyncUpload(t *testing.T) {
	d := cmDeploy(t)
	alice := d.register(t, "", "", false)
	mxc := alice.mustDo(t, "POST", []string{"_matrix", "media", "v1", "create"}).str("content_uri")
	origin, id := cmSplitMxc(mxc)
	pic := cmPNG(t, 8, 8)

	t.Run("Not yet uploaded", func(t *testing.T) {
		// Complement waits the default 20 s; a short timeout_ms keeps this fast.
		r := alice.do(t, "GET", []string{"_matrix", "media", "v3", "download", origin, id}, cmQuery(url.Values{"timeout_ms": {"100"}}))
		cmWant(t, "pending", r, 504, "M_NOT_YET_UPLOADED")
		if r.str("error") != "Media has not been uploaded yet" {
			t.Fatalf("error %q", r.str("error"))
		}
	})
	t.Run("Upload media", func(t *testing.T) {
		alice.mustDo(t, "PUT", []string{"_matrix", "media", "v3", "upload", origin, id},
			cmRaw(pic), cmContentType("image/png"), cmQuery(url.Values{"filename": {"test.png"}}))
	})
	t.Run("Cannot upload to a media ID that has already been uploaded to", func(t *testing.T) {
		r := alice.do(t, "PUT", []string{"_matrix", "media", "v3", "upload", origin, id})
		cmWant(t, "second upload", r, 409, "M_CANNOT_OVERWRITE_MEDIA")
		if r.str("error") != "Media ID already has content" {
			t.Fatalf("error %q", r.str("error"))
		}
	})
	t.Run("Download media", func(t *testing.T) {
		for _, authed := range []bool{false, true} {
			r := alice.download(t, mxc, authed)
			if !bytes.Equal(r.body, pic) || r.header.Get("Content-Type") != "image/png" {
				t.Fatalf("authenticated=%v: %q %d bytes", authed, r.header.Get("Content-Type"), len(r.body))
			}
		}
	})
}

// cmDisposition is Complement's downloadForFilename.
func cmDisposition(t *testing.T, c *cmClient, mxc, altName string) (string, bool) {
	t.Helper()
	var extra []string
	if altName != "" {
		extra = []string{altName}
	}
	r := c.download(t, mxc, false, extra...)
	kind, params, err := mime.ParseMediaType(r.header.Get("Content-Disposition"))
	if err != nil {
		t.Fatalf("Content-Disposition %q: %v", r.header.Get("Content-Disposition"), err)
	}
	name, has := params["filename"]
	switch kind {
	case "attachment":
		// Complement's check is inverted: an attachment with a filename fails.
		if has {
			t.Fatalf("attachment with a filename: %q", r.header.Get("Content-Disposition"))
		}
		return name, true
	case "inline":
		return name, false
	}
	t.Fatalf("disposition %q", kind)
	return "", false
}

func TestComplementMediaFilenames(t *testing.T) {
	d := cmDeploy(t)
	alice := d.register(t, "", "", false)
	pic := cmPNG(t, 8, 8)
	check := func(t *testing.T, upload, alt, want string) {
		mxc := alice.uploadContent(t, pic, upload, "image/png")
		name, attachment := cmDisposition(t, alice, mxc, alt)
		if attachment || name != want {
			t.Fatalf("got %q attachment=%v, want %q", name, attachment, want)
		}
	}
	for _, name := range []string{"ascii", "name with spaces", "name;with;semicolons"} {
		t.Run("Can download file '"+name+"'", func(t *testing.T) { check(t, name, "", name) })
	}
	t.Run("Can download specifying a different ASCII file name", func(t *testing.T) { check(t, "test.png", "file.png", "file.png") })
	t.Run("Can download specifying a different Unicode file name", func(t *testing.T) { check(t, "\xf0\x9f\x90\x94", "\u2615", "\u2615") })
	t.Run("Can download with Unicode file name locally", func(t *testing.T) { check(t, "\xf0\x9f\x90\x94", "", "\xf0\x9f\x90\x94") })
}

func TestComplementLocalPngThumbnail(t *testing.T) {
	d := cmDeploy(t)
	alice := d.register(t, "", "", false)
	mxc := alice.uploadContent(t, cmPNG(t, 300, 200), "test.png", "image/png")
	origin, id := cmSplitMxc(mxc)
	for _, path := range [][]string{
		{"_matrix", "media", "v3", "thumbnail", origin, id},
		{"_matrix", "client", "v1", "media", "thumbnail", origin, id},
	} {
		r := alice.mustDo(t, "GET", path, cmQuery(url.Values{"width": {"32"}, "height": {"32"}, "method": {"scale"}}))
		var err error
		switch mt := strings.Split(r.header.Get("Content-Type"), ";")[0]; mt {
		case "image/png":
			_, err = png.Decode(bytes.NewReader(r.body))
		case "image/jpeg", "image/jpg":
			_, err = jpeg.Decode(bytes.NewReader(r.body))
		default:
			t.Fatalf("%v: mimetype %s", path, mt)
		}
		if err != nil {
			t.Fatalf("%v: %v", path, err)
		}
	}
	anon := d.unauthed()
	cmWant(t, "no token", anon.do(t, "GET", []string{"_matrix", "client", "v1", "media", "thumbnail", origin, id}), 401, "")
}

func TestComplementMediaWithoutFileName(t *testing.T) {
	d := cmDeploy(t)
	alice := d.register(t, "", "", false)
	file := []byte("Hello World!")
	mxc := alice.uploadContent(t, file, "", "text/plain")
	if !strings.HasPrefix(mxc, "mxc://") {
		t.Fatalf("mxc %q", mxc)
	}
	for _, authed := range []bool{false, true} {
		r := alice.download(t, mxc, authed)
		if mt := strings.Split(r.header.Get("Content-Type"), ";")[0]; mt != "text/plain" || !bytes.Equal(r.body, file) {
			t.Fatalf("authenticated=%v: %q %q", authed, r.header.Get("Content-Type"), r.body)
		}
	}
}
