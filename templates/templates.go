// Package templates holds vmarket's template file format and the templates
// bundled with the binary.
//
// A template file is JSON: a provider, its categories and their service
// types (see market.Template). In a file, each lifecycle script
// (serviceAPI.start, .stop, .refund) is either plain Lua source written
// inline, or "@relative/path.lua" naming a plain .lua file next to the
// template. Load reads such a file and returns the template in wire form,
// with every script url-encoded as the catalog API carries it.
//
// Bundled templates live in this directory, a folder each holding a
// template.json and its scripts; the server applies them at start.
package templates

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/runtime"
)

//go:embed */template.json */*.lua
var bundled embed.FS

// FileName is the template file name inside a bundled template folder.
const FileName = "template.json"

// MaxFileSize bounds a template file and each script file it names.
const MaxFileSize = 8 << 20

// Load reads the template file at name in fsys, resolves "@file" script
// references relative to it, and returns the template with url-encoded
// scripts, plus the sha256 of the template and every file it pulled in.
func Load(fsys fs.FS, name string) (*market.Template, string, error) {
	data, err := readLimited(fsys, name)
	if err != nil {
		return nil, "", err
	}
	t, err := Parse(data)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	h := sha256.New()
	h.Write(data)
	dir := path.Dir(name)
	for ci := range t.Categories {
		for ti := range t.Categories[ci].ServiceTypes {
			st := &t.Categories[ci].ServiceTypes[ti]
			for _, s := range st.ServiceAPI.Scripts() {
				src := s.Script.Encoded
				if strings.HasPrefix(src, "@") {
					ref := strings.TrimPrefix(src, "@")
					// Clean first: path.Join would let "../x" out of a
					// folder as long as the result stays inside fsys.
					clean := path.Clean(ref)
					if path.IsAbs(ref) || clean == ".." || strings.HasPrefix(clean, "../") || !fs.ValidPath(path.Join(dir, clean)) {
						return nil, "", fmt.Errorf("%s: categories[%d].serviceTypes[%d].serviceAPI.%s: %q must be a relative path inside the template's folder", name, ci, ti, s.Name, ref)
					}
					b, err := readLimited(fsys, path.Join(dir, ref))
					if err != nil {
						return nil, "", fmt.Errorf("%s: categories[%d].serviceTypes[%d].serviceAPI.%s: %w", name, ci, ti, s.Name, err)
					}
					h.Write(b)
					src = string(b)
				}
				if src != "" {
					s.Script.Encoded = runtime.EncodeScript(src)
				}
			}
		}
	}
	return t, hex.EncodeToString(h.Sum(nil)), nil
}

// Parse decodes template JSON (wire or file form; no reference
// resolution). Unknown fields are rejected so typos surface.
func Parse(data []byte) (*market.Template, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var t market.Template
	if err := dec.Decode(&t); err != nil {
		return nil, describeJSONError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, market.Invalid("", "trailing data after the template object")
	}
	return &t, nil
}

// describeJSONError names the field of a JSON type error.
func describeJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return market.Invalid(te.Field, "must be %s", te.Type)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return market.Invalid("", "malformed JSON at byte %d: %v", se.Offset, err)
	}
	return market.Invalid("", "%v", err)
}

func readLimited(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, MaxFileSize)
	}
	return data, nil
}

// Bundle is one bundled template.
type Bundle struct {
	// Name is the template's folder name.
	Name string
	// Hash identifies the content (template and scripts).
	Hash     string
	Template *market.Template
}

// Bundled loads every bundled template, in folder-name order.
func Bundled() ([]Bundle, error) {
	entries, err := fs.ReadDir(bundled, ".")
	if err != nil {
		return nil, err
	}
	var out []Bundle
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		t, hash, err := Load(bundled, path.Join(e.Name(), FileName))
		if err != nil {
			return nil, fmt.Errorf("bundled template %s: %w", e.Name(), err)
		}
		out = append(out, Bundle{Name: e.Name(), Hash: hash, Template: t})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// PublicURLVar is the placeholder bundled templates use for the server's own
// public URL in apiHost fields: the bundled provider's apiHost is vmarket
// itself (the V Cloud client sends user-service and refund calls there) and
// the demo backend is mounted on it.
const PublicURLVar = "{{publicURL}}"

// Expand replaces PublicURLVar in every apiHost of t with publicURL
// (without a trailing slash).
func Expand(t *market.Template, publicURL string) {
	publicURL = strings.TrimRight(publicURL, "/")
	sub := func(s *string) { *s = strings.ReplaceAll(*s, PublicURLVar, publicURL) }
	sub(&t.Provider.APIHost)
	for ci := range t.Categories {
		c := &t.Categories[ci]
		sub(&c.APIHost)
		for ti := range c.ServiceTypes {
			sub(&c.ServiceTypes[ti].APIHost)
		}
	}
}

// FS returns the bundled templates' files (for tests and tools).
func FS() fs.FS { return bundled }
