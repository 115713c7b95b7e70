package clientapi

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// mediaDo sends a raw-body request and returns the answer and its body.
func mediaDo(t *testing.T, method, u, token, ctype string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

// upload posts content and returns the media ID of its mxc:// URI.
func upload(t *testing.T, base, token, ctype, filename string, content []byte) string {
	t.Helper()
	u := base + "/_matrix/media/v3/upload"
	if filename != "" {
		u += "?filename=" + url.QueryEscape(filename)
	}
	resp, raw := mediaDo(t, "POST", u, token, ctype, bytes.NewReader(content))
	var out struct {
		ContentURI string `json:"content_uri"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(raw, &out) != nil {
		t.Fatalf("upload: %d %s", resp.StatusCode, raw)
	}
	id, ok := strings.CutPrefix(out.ContentURI, "mxc://test.local/")
	if !ok {
		t.Fatalf("content_uri %q", out.ContentURI)
	}
	return id
}

func wantMatrixError(t *testing.T, resp *http.Response, raw []byte, status int, errcode string) {
	t.Helper()
	var e matrixError
	_ = json.Unmarshal(raw, &e)
	if resp.StatusCode != status || e.Errcode != errcode {
		t.Fatalf("want %d %s, got %d %s", status, errcode, resp.StatusCode, raw)
	}
}

func disposition(t *testing.T, resp *http.Response) (string, string) {
	t.Helper()
	kind, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
	if err != nil {
		t.Fatalf("Content-Disposition %q: %v", resp.Header.Get("Content-Disposition"), err)
	}
	return kind, params["filename"]
}

func TestMediaUploadDownload(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "alice")
	id := upload(t, base, tok, "text/plain", "hello.txt", []byte("hello world"))

	dl := base + "/_matrix/media/v3/download/test.local/" + id
	resp, body := mediaDo(t, "GET", dl, "", "", nil)
	if resp.StatusCode != 200 || string(body) != "hello world" {
		t.Fatalf("download: %d %q", resp.StatusCode, body)
	}
	h := resp.Header
	if h.Get("Content-Type") != "text/plain" || h.Get("Content-Length") != "11" ||
		h.Get("Cross-Origin-Resource-Policy") != "cross-origin" || !strings.HasPrefix(h.Get("Content-Security-Policy"), "sandbox;") {
		t.Fatalf("headers %v", h)
	}
	if kind, name := disposition(t, resp); kind != "inline" || name != "hello.txt" {
		t.Fatalf("disposition %s %q", kind, name)
	}

	// The authenticated path serves the same, and only with a token.
	authed := base + "/_matrix/client/v1/media/download/test.local/" + id
	resp, body = mediaDo(t, "GET", authed, "", "", nil)
	wantMatrixError(t, resp, body, 401, "M_MISSING_TOKEN")
	resp, body = mediaDo(t, "GET", authed, tok, "", nil)
	if resp.StatusCode != 200 || string(body) != "hello world" {
		t.Fatalf("authed download: %d %q", resp.StatusCode, body)
	}

	// A range.
	req, _ := http.NewRequest("GET", dl, nil)
	req.Header.Set("Range", "bytes=6-")
	rr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(rr.Body)
	rr.Body.Close()
	if rr.StatusCode != http.StatusPartialContent || string(part) != "world" {
		t.Fatalf("range: %d %q", rr.StatusCode, part)
	}
}

func TestMediaFilenames(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "alice")
	for _, name := range []string{"ascii", "name with spaces", "name;with;semicolons", `quo"te`, "\U0001F414"} {
		id := upload(t, base, tok, "image/png", name, []byte("not really a png"))
		resp, _ := mediaDo(t, "GET", base+"/_matrix/media/v3/download/test.local/"+id, "", "", nil)
		if kind, got := disposition(t, resp); kind != "inline" || got != name {
			t.Errorf("upload name %q: got %s %q", name, kind, got)
		}
		// A name in the path replaces the uploaded one.
		other := "\u2615 other.png"
		resp, _ = mediaDo(t, "GET", base+"/_matrix/media/r0/download/test.local/"+id+"/"+url.PathEscape(other), "", "", nil)
		if _, got := disposition(t, resp); got != other {
			t.Errorf("path name: got %q", got)
		}
	}
	// No name: no filename parameter. Unsafe types are attachments.
	id := upload(t, base, tok, "text/html", "", []byte("<script>alert(1)</script>"))
	resp, _ := mediaDo(t, "GET", base+"/_matrix/media/v3/download/test.local/"+id, "", "", nil)
	if kind, name := disposition(t, resp); kind != "attachment" || name != "" {
		t.Fatalf("html: %s %q", kind, name)
	}
	// No content type: octet-stream.
	id = upload(t, base, tok, "", "x.bin", []byte{1, 2, 3})
	resp, _ = mediaDo(t, "GET", base+"/_matrix/media/v3/download/test.local/"+id, "", "", nil)
	if resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
}

func TestMediaLargeAndLimits(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "alice")
	// Several chunks round trip.
	content := make([]byte, 1300<<10)
	_, _ = rand.Read(content)
	id := upload(t, base, tok, "application/octet-stream", "big.bin", content)
	resp, body := mediaDo(t, "GET", base+"/_matrix/media/v3/download/test.local/"+id, "", "", nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, content) {
		t.Fatalf("big download: %d, %d bytes", resp.StatusCode, len(body))
	}

	// Declared too large: refused before reading.
	req, _ := http.NewRequest("POST", base+"/_matrix/media/v3/upload", strings.NewReader("x"))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.ContentLength = maxUploadBytes + 1
	if r, err := http.DefaultClient.Do(req); err == nil {
		raw, _ := io.ReadAll(r.Body)
		r.Body.Close()
		wantMatrixError(t, r, raw, 413, "M_TOO_LARGE")
	}
	// Streamed (no length) past the limit.
	over := io.MultiReader(io.LimitReader(zeros{}, maxUploadBytes), strings.NewReader("!"))
	resp, body = mediaDo(t, "POST", base+"/_matrix/media/v3/upload", tok, "text/plain", struct{ io.Reader }{over})
	wantMatrixError(t, resp, body, 413, "M_TOO_LARGE")

	for _, u := range []string{
		"/_matrix/media/v3/download/test.local/unknownMediaID",
		"/_matrix/media/v3/download/elsewhere.org/" + id,
		"/_matrix/media/v3/download/test.local/bad.id",
		"/_matrix/media/v3/thumbnail/test.local/unknownMediaID?width=32&height=32",
	} {
		resp, body = mediaDo(t, "GET", base+u, "", "", nil)
		wantMatrixError(t, resp, body, 404, "M_NOT_FOUND")
	}
	resp, body = mediaDo(t, "POST", base+"/_matrix/media/v3/upload", "", "text/plain", strings.NewReader("x"))
	wantMatrixError(t, resp, body, 401, "M_MISSING_TOKEN")

	for _, u := range []string{"/_matrix/media/v3/config", "/_matrix/media/r0/config", "/_matrix/client/v1/media/config"} {
		status, out := call(t, "GET", base+u, tok, nil)
		if status != 200 || out["m.upload.size"] != float64(maxUploadBytes) {
			t.Fatalf("%s: %d %v", u, status, out)
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestMediaAsyncUpload(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "alice")
	_, bobTok := registerUser(t, base, "bob")
	status, out := call(t, "POST", base+"/_matrix/media/v1/create", tok, map[string]any{})
	uri, _ := out["content_uri"].(string)
	id, ok := strings.CutPrefix(uri, "mxc://test.local/")
	exp, _ := out["unused_expires_at"].(float64)
	if status != 200 || !ok || int64(exp) < time.Now().Add(23*time.Hour).UnixMilli() {
		t.Fatalf("create: %d %v", status, out)
	}
	dl := base + "/_matrix/media/v3/download/test.local/" + id
	resp, body := mediaDo(t, "GET", dl+"?timeout_ms=50", "", "", nil)
	wantMatrixError(t, resp, body, 504, "M_NOT_YET_UPLOADED")

	put := base + "/_matrix/media/v3/upload/test.local/" + id + "?filename=a.txt"
	resp, body = mediaDo(t, "PUT", put, bobTok, "text/plain", strings.NewReader("nope"))
	wantMatrixError(t, resp, body, 403, "M_FORBIDDEN")

	// A download waiting for the content gets it once it is uploaded.
	got := make(chan string, 1)
	go func() {
		r, err := http.Get(dl + "?timeout_ms=10000")
		if err != nil {
			got <- err.Error()
			return
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		got <- r.Status + " " + string(b)
	}()
	time.Sleep(100 * time.Millisecond)
	resp, body = mediaDo(t, "PUT", put, tok, "text/plain", strings.NewReader("later"))
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "{}" {
		t.Fatalf("put: %d %s", resp.StatusCode, body)
	}
	select {
	case s := <-got:
		if s != "200 OK later" {
			t.Fatalf("waiting download: %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiting download did not return")
	}
	resp, body = mediaDo(t, "PUT", put, tok, "text/plain", strings.NewReader("again"))
	wantMatrixError(t, resp, body, 409, "M_CANNOT_OVERWRITE_MEDIA")
	resp, body = mediaDo(t, "PUT", base+"/_matrix/media/v3/upload/test.local/neverCreated", tok, "text/plain", strings.NewReader("x"))
	wantMatrixError(t, resp, body, 404, "M_NOT_FOUND")

	// Pending reservations are bounded per user.
	for i := 0; ; i++ {
		status, out = call(t, "POST", base+"/_matrix/media/v1/create", bobTok, nil)
		if status == 429 {
			if out["errcode"] != "M_LIMIT_EXCEEDED" || i == 0 {
				t.Fatalf("after %d: %v", i, out)
			}
			break
		}
		if status != 200 || i > 100 {
			t.Fatalf("create %d: %d %v", i, status, out)
		}
	}
}
