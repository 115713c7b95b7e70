package federation

import (
	"errors"
	"testing"

	mfed "maunium.net/go/mautrix/federation"
)

func TestParseXMatrix(t *testing.T) {
	want := mfed.XMatrixAuth{Origin: "origin.hs.example.com", Destination: "destination.hs.example.com",
		KeyID: "ed25519:key1", Signature: "ABCDEF+/x"}
	noDest := want
	noDest.Destination = ""
	good := []struct {
		name, header string
		want         mfed.XMatrixAuth
	}{
		{"spec example", `X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="ABCDEF+/x"`, want},
		{"unquoted with colons", `X-Matrix origin=origin.hs.example.com,destination=destination.hs.example.com,key=ed25519:key1,sig=ABCDEF+/x`, want},
		{"case-insensitive scheme and names", `x-matrix ORIGIN="origin.hs.example.com",Destination="destination.hs.example.com",KEY="ed25519:key1",Sig="ABCDEF+/x"`, want},
		{"spaces and tabs around commas", "X-Matrix   origin=\"origin.hs.example.com\" ,\tdestination=\"destination.hs.example.com\"\t, key=\"ed25519:key1\" , sig=\"ABCDEF+/x\"", want},
		{"any order, unknown params", `X-Matrix sig="ABCDEF+/x",foo="b,a\"r",key="ed25519:key1",destination="destination.hs.example.com",origin="origin.hs.example.com"`, want},
		{"escapes", `X-Matrix origin="origin.hs.exa\mple.com",destination="destination.hs.example.com",key="ed25519:key1",sig="ABCDEF+/x"`, want},
		{"empty elements", `X-Matrix ,origin="origin.hs.example.com",,destination="destination.hs.example.com",key="ed25519:key1",sig="ABCDEF+/x",`, want},
		{"no destination", `X-Matrix origin="origin.hs.example.com",key="ed25519:key1",sig="ABCDEF+/x"`, noDest},
		{"mautrix's format", want.String(), want},
		{"our format", FormatXMatrix(want), want},
	}
	for _, tc := range good {
		got, err := ParseXMatrix(tc.header)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %+v, %v", tc.name, got, err)
		}
	}
	bad := map[string]string{
		"empty":              ``,
		"bearer":             `Bearer abc`,
		"scheme only":        `X-Matrix`,
		"no space":           `X-Matrixorigin="a"`,
		"missing sig":        `X-Matrix origin="a",key="ed25519:k"`,
		"missing origin":     `X-Matrix key="ed25519:k",sig="s"`,
		"unterminated":       `X-Matrix origin="a,key="ed25519:k",sig="s`,
		"no value":           `X-Matrix origin=,key="ed25519:k",sig="s"`,
		"no equals":          `X-Matrix origin,key="ed25519:k",sig="s"`,
		"junk after value":   `X-Matrix origin="a"x,key="ed25519:k",sig="s"`,
		"duplicate origin":   `X-Matrix origin="a",origin="b",key="ed25519:k",sig="s"`,
		"control character":  "X-Matrix origin=\"a\x01\",key=\"ed25519:k\",sig=\"s\"",
		"quote in unquoted":  `X-Matrix origin=a"b,key="ed25519:k",sig="s"`,
		"trailing backslash": `X-Matrix origin="a\`,
	}
	for name, h := range bad {
		if got, err := ParseXMatrix(h); !errors.Is(err, ErrMalformedXMatrix) {
			t.Errorf("%s: parsed as %+v, %v", name, got, err)
		}
	}
}

// Quotes and backslashes survive a format and parse round trip.
func TestFormatXMatrixEscapes(t *testing.T) {
	in := mfed.XMatrixAuth{Origin: `we"ird\name`, Destination: "d", KeyID: "ed25519:k", Signature: "s,t"}
	got, err := ParseXMatrix(FormatXMatrix(in))
	if err != nil || got != in {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}
