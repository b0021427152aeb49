package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// EncodeBody encodes v as JSON the way Python's json.dumps does by default,
// which is what the V Cloud client sends and signs: ", " and ": "
// separators, every character outside printable ASCII escaped (\u4e2d,
// astral characters as surrogate pairs, DEL as \u007f), and no HTML
// escaping of <, > and &. Object keys come in encoding/json order (struct
// field order, sorted map keys) and numbers in Go's formatting (a float 1.0
// is written 1), so the text may differ from what Python would write for
// the same data; the signature covers whatever bytes are sent.
func EncodeBody(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding request body: %w", err)
	}
	return pythonStyle(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// pythonStyle rewrites compact JSON from encoding/json: a space after each
// ',' and ':' outside strings, non-ASCII and DEL inside strings escaped.
func pythonStyle(compact []byte) []byte {
	const hexDigits = "0123456789abcdef"
	out := make([]byte, 0, len(compact)+len(compact)/4)
	escape := func(r rune) {
		out = append(out, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
	}
	inString := false
	for i := 0; i < len(compact); {
		c := compact[i]
		switch {
		case !inString:
			out = append(out, c)
			switch c {
			case '"':
				inString = true
			case ',', ':':
				out = append(out, ' ')
			}
			i++
		case c == '\\':
			// encoding/json's escapes are already Python's: \" \\ \n \r
			// \t \b \f and \u00XX, \u2028, \u2029, \ufffd in lower case.
			out = append(out, c, compact[i+1])
			i += 2
		case c == '"':
			out = append(out, c)
			inString = false
			i++
		case c == 0x7f:
			escape(rune(c))
			i++
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(compact[i:])
			if r >= 0x10000 {
				r -= 0x10000
				escape(0xd800 + r>>10)
				escape(0xdc00 + r&0x3ff)
			} else {
				escape(r)
			}
			i += size
		}
	}
	return out
}
