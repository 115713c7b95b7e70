package federation

import (
	"errors"
	"fmt"
	"strings"

	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"
)

// ErrMalformedXMatrix is wrapped by every ParseXMatrix error.
var ErrMalformedXMatrix = errors.New("malformed X-Matrix authorization")

const maxAuthHeaderLen = 8 << 10

// ParseXMatrix parses an Authorization header with the X-Matrix scheme as
// the spec defines it (RFC 9110 §11.4 auth-params): a case-insensitive
// scheme, one or more spaces, then name=value pairs separated by commas with
// optional spaces or tabs around them. Names are case-insensitive; values are
// tokens or quoted strings with backslash escapes; unquoted values may hold
// colons (older servers) and are read up to the next comma or space. Unknown
// parameters are ignored, a repeated known one is an error. origin, key and
// sig are required; destination is optional (servers before v1.3).
//
// mautrix's ParseXMatrixAuth splits on every comma and trims quotes, so it
// misreads quoted values holding commas or escapes; hence this parser.
func ParseXMatrix(header string) (mfed.XMatrixAuth, error) {
	var out mfed.XMatrixAuth
	if len(header) > maxAuthHeaderLen {
		return out, fmt.Errorf("%w: header too long", ErrMalformedXMatrix)
	}
	scheme, rest, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "X-Matrix") {
		return out, fmt.Errorf("%w: scheme is not X-Matrix", ErrMalformedXMatrix)
	}
	seen := map[string]bool{}
	p := &authParser{s: rest}
	p.skip(" \t")
	for !p.done() {
		if p.peek() == ',' { // empty list elements are allowed
			p.i++
			p.skip(" \t")
			continue
		}
		name, value, err := p.param()
		if err != nil {
			return out, fmt.Errorf("%w: %v", ErrMalformedXMatrix, err)
		}
		name = strings.ToLower(name)
		switch name {
		case "origin", "destination", "key", "sig":
			if seen[name] {
				return out, fmt.Errorf("%w: %s given twice", ErrMalformedXMatrix, name)
			}
			seen[name] = true
		}
		switch name {
		case "origin":
			out.Origin = value
		case "destination":
			out.Destination = value
		case "key":
			out.KeyID = id.KeyID(value)
		case "sig":
			out.Signature = value
		}
		p.skip(" \t")
		if p.done() {
			break
		}
		if p.peek() != ',' {
			return out, fmt.Errorf("%w: expected ',' after %s", ErrMalformedXMatrix, name)
		}
		p.i++
		p.skip(" \t")
	}
	if out.Origin == "" || out.KeyID == "" || out.Signature == "" {
		return out, fmt.Errorf("%w: origin, key and sig are required", ErrMalformedXMatrix)
	}
	return out, nil
}

type authParser struct {
	s string
	i int
}

func (p *authParser) done() bool { return p.i >= len(p.s) }
func (p *authParser) peek() byte { return p.s[p.i] }

func (p *authParser) skip(chars string) {
	for !p.done() && strings.IndexByte(chars, p.peek()) >= 0 {
		p.i++
	}
}

// param reads name BWS "=" BWS value.
func (p *authParser) param() (string, string, error) {
	start := p.i
	for !p.done() && isTokenChar(p.peek()) {
		p.i++
	}
	name := p.s[start:p.i]
	if name == "" {
		return "", "", fmt.Errorf("bad character %q at %d", p.s[p.i], p.i)
	}
	p.skip(" \t")
	if p.done() || p.peek() != '=' {
		return "", "", fmt.Errorf("parameter %s has no value", name)
	}
	p.i++
	p.skip(" \t")
	if p.done() {
		return "", "", fmt.Errorf("parameter %s has no value", name)
	}
	if p.peek() == '"' {
		v, err := p.quoted()
		return name, v, err
	}
	start = p.i
	for !p.done() && p.peek() != ',' && p.peek() != ' ' && p.peek() != '\t' {
		c := p.peek()
		if c == '"' || c == '\\' || c < 0x20 || c == 0x7f {
			return "", "", fmt.Errorf("bad character %q in unquoted value of %s", c, name)
		}
		p.i++
	}
	return name, p.s[start:p.i], nil
}

// quoted reads a quoted-string, unescaping backslash pairs.
func (p *authParser) quoted() (string, error) {
	p.i++ // opening quote
	var b strings.Builder
	for !p.done() {
		c := p.peek()
		p.i++
		switch {
		case c == '"':
			return b.String(), nil
		case c == '\\':
			if p.done() {
				return "", errors.New("unterminated escape")
			}
			c = p.peek()
			p.i++
			if (c < 0x20 && c != '\t') || c == 0x7f {
				return "", fmt.Errorf("control character %q in quoted value", c)
			}
			b.WriteByte(c)
		case (c < 0x20 && c != '\t') || c == 0x7f:
			return "", fmt.Errorf("control character %q in quoted value", c)
		default:
			b.WriteByte(c)
		}
	}
	return "", errors.New("unterminated quoted value")
}

// isTokenChar is RFC 9110's tchar.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// FormatXMatrix writes the header value the way the spec asks senders to:
// one space after the scheme, lower-case names, quoted values, no spaces
// around commas. Quotes and backslashes in values are escaped.
func FormatXMatrix(a mfed.XMatrixAuth) string {
	q := func(s string) string {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	}
	return "X-Matrix origin=" + q(a.Origin) + ",destination=" + q(a.Destination) +
		",key=" + q(string(a.KeyID)) + ",sig=" + q(a.Signature)
}
