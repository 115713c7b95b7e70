package rooms

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// Canonical JSON (appendices, "Canonical JSON") has integers only, within
// [-(2^53)+1, 2^53-1]: an event with a float or a larger number cannot be
// hashed and signed, so it is the client's bad JSON (400 M_BAD_JSON), not
// a server error.

const maxCanonicalInt = 1<<53 - 1

var errNotCanonical = errors.New("numbers must be integers between -(2^53)+1 and 2^53-1")

// checkCanonicalNumbers walks raw JSON and refuses a number outside the
// canonical range.
func checkCanonicalNumbers(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		num, ok := tok.(json.Number)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(num.String(), 10, 64)
		if err != nil || n > maxCanonicalInt || n < -maxCanonicalInt {
			return errNotCanonical
		}
	}
}
