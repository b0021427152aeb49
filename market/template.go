package market

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// Template is a provider's whole catalog tree in one document: the
// provider, its categories and their service types. Uploading one creates
// or updates everything in it in one transaction; objects are matched by
// name (provider name; category name under the provider; type name under
// the category), so ids survive re-uploads. Objects not named in the
// template are left as they are.
//
// On the wire, scripts are url-encoded as in the service type API.
type Template struct {
	Provider   Provider           `json:"provider"`
	Categories []TemplateCategory `json:"categories"`
}

// TemplateCategory is a category of a template with its service types.
// Provider fields inside are ignored: the template's provider owns all.
type TemplateCategory struct {
	Category
	ServiceTypes []ServiceType `json:"serviceTypes"`
}

// TemplateResult is the answer to a template upload.
type TemplateResult struct {
	Provider     *Provider     `json:"provider"`
	Categories   []Category    `json:"categories"`
	ServiceTypes []ServiceType `json:"serviceTypes"`
	Created      int           `json:"created"`
	Updated      int           `json:"updated"`
}

// Limits on template size.
const (
	MaxTemplateCategories = 256
	MaxTemplateTypes      = 4096
)

// prefixField prefixes the field of a validation error with path.
func prefixField(path string, err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	c := *e
	if c.Field == "" {
		c.Field = path
	} else {
		c.Field = path + "." + c.Field
	}
	return &c
}

// CheckTemplate validates a template without a store: field rules, unique
// names inside the template, address formats and script compilation. It
// fills in the derived fields (provider and category of each type, script
// hashes) and returns the scripts to store.
func (c *Catalog) CheckTemplate(t *Template) error {
	_, err := c.checkTemplate(t)
	return err
}

func (c *Catalog) checkTemplate(t *Template) ([]compiledScript, error) {
	p := &t.Provider
	if err := c.checkProvider(p); err != nil {
		return nil, prefixField("provider", err)
	}
	p.Normalize()
	if len(t.Categories) > MaxTemplateCategories {
		return nil, Invalid("categories", "has more than %d categories", MaxTemplateCategories)
	}
	var scripts []compiledScript
	catNames := map[string]int{}
	types := 0
	for i := range t.Categories {
		tc := &t.Categories[i]
		path := fmt.Sprintf("categories[%d]", i)
		tc.Provider = p.Name
		if err := tc.Category.Validate(); err != nil {
			return nil, prefixField(path, err)
		}
		if j, dup := catNames[tc.Name]; dup {
			return nil, Invalid(path+".name", "category %q also at categories[%d]", tc.Name, j)
		}
		catNames[tc.Name] = i
		typeNames := map[string]int{}
		types += len(tc.ServiceTypes)
		if types > MaxTemplateTypes {
			return nil, Invalid(path+".serviceTypes", "template has more than %d service types", MaxTemplateTypes)
		}
		for k := range tc.ServiceTypes {
			st := &tc.ServiceTypes[k]
			tpath := fmt.Sprintf("%s.serviceTypes[%d]", path, k)
			st.Provider, st.Category, st.CategoryID = p.Name, tc.Name, ""
			if err := st.Validate(); err != nil {
				return nil, prefixField(tpath, err)
			}
			if j, dup := typeNames[st.Name]; dup {
				return nil, Invalid(tpath+".name", "service type %q also at serviceTypes[%d]", st.Name, j)
			}
			typeNames[st.Name] = k
			s, err := c.compileScripts(st)
			if err != nil {
				return nil, prefixField(tpath, err)
			}
			scripts = append(scripts, s...)
		}
	}
	return scripts, nil
}

// ApplyTemplate validates t and creates or updates its whole tree in one
// transaction: all or nothing. A new provider may be created by any signed
// caller (who becomes its sign address) or an admin; an existing one only
// by its sign address or an admin.
func (c *Catalog) ApplyTemplate(ctx context.Context, caller Caller, t *Template) (*TemplateResult, error) {
	if !caller.IsAdmin() && caller.Address == "" {
		return nil, Denied(caller, "uploading a template needs a signed request or an operator token")
	}
	scripts, err := c.checkTemplate(t)
	if err != nil {
		return nil, err
	}
	summary := map[string]any{"provider": t.Provider.Name, "address": caller.Address, "operator": caller.OperatorName,
		"categories": len(t.Categories)}
	if err := c.hooks.Before(ctx, BeforeTemplateUpload, summary); err != nil {
		return nil, err
	}
	res := &TemplateResult{}
	err = c.update(ctx, func(tx Tx) error {
		*res = TemplateResult{}
		return c.applyTemplate(ctx, tx, caller, t, scripts, res)
	})
	if err != nil {
		return nil, err
	}
	for i := range res.ServiceTypes {
		res.ServiceTypes[i] = res.ServiceTypes[i].Public()
	}
	summary["created"], summary["updated"] = res.Created, res.Updated
	c.hooks.After(ctx, EventTemplateUploaded, summary)
	return res, nil
}

func (c *Catalog) applyTemplate(ctx context.Context, tx Tx, caller Caller, t *Template, scripts []compiledScript, res *TemplateResult) error {
	now := c.now().Unix()
	p := t.Provider
	existing, err := tx.Provider(ctx, p.Name)
	switch {
	case err == nil:
		if err := authorize(caller, existing); err != nil {
			return err
		}
		p.SignAddress, p.CreatedAt, p.UpdatedAt = existing.SignAddress, existing.CreatedAt, now
		if err := tx.UpdateProvider(ctx, &p); err != nil {
			return err
		}
		res.Updated++
	case KindOf(err) == KindNotFound:
		p.SignAddress = caller.Address
		p.CreatedAt, p.UpdatedAt = now, now
		if err := tx.CreateProvider(ctx, &p); err != nil {
			return err
		}
		res.Created++
	default:
		return err
	}
	if err := putScripts(ctx, tx, scripts); err != nil {
		return err
	}
	for i := range t.Categories {
		tc := t.Categories[i]
		cat := tc.Category
		path := fmt.Sprintf("categories[%d]", i)
		old, err := tx.CategoryByName(ctx, p.Name, cat.Name)
		switch {
		case err == nil:
			cat.ID, cat.CreatedAt, cat.UpdatedAt = old.ID, old.CreatedAt, now
			cat.Normalize()
			if err := tx.UpdateCategory(ctx, &cat); err != nil {
				return prefixField(path, err)
			}
			res.Updated++
		case KindOf(err) == KindNotFound:
			cat.ID, cat.CreatedAt, cat.UpdatedAt = uuid.NewString(), now, now
			cat.Normalize()
			if err := tx.CreateCategory(ctx, &cat); err != nil {
				return prefixField(path, err)
			}
			res.Created++
		default:
			return err
		}
		for k := range tc.ServiceTypes {
			st := tc.ServiceTypes[k]
			st.CategoryID, st.Category = cat.ID, cat.Name
			tpath := fmt.Sprintf("%s.serviceTypes[%d]", path, k)
			old, err := tx.ServiceTypeByName(ctx, cat.ID, st.Name)
			switch {
			case err == nil:
				st.ID, st.CreatedAt, st.UpdatedAt = old.ID, old.CreatedAt, now
				st.Normalize()
				if err := tx.UpdateServiceType(ctx, &st); err != nil {
					return prefixField(tpath, err)
				}
				res.Updated++
			case KindOf(err) == KindNotFound:
				st.ID, st.CreatedAt, st.UpdatedAt = uuid.NewString(), now, now
				st.Normalize()
				if err := tx.CreateServiceType(ctx, &st); err != nil {
					return prefixField(tpath, err)
				}
				res.Created++
			default:
				return err
			}
			res.ServiceTypes = append(res.ServiceTypes, st)
		}
		fresh, err := tx.Category(ctx, cat.ID)
		if err != nil {
			return err
		}
		res.Categories = append(res.Categories, *fresh)
	}
	fresh, err := tx.Provider(ctx, p.Name)
	if err != nil {
		return err
	}
	res.Provider = fresh
	return nil
}

// ApplyBundledTemplate applies a template shipped with the binary, as an
// operator would, unless the same content (by hash) was applied before. It
// reports whether it applied anything. Re-applying changed content updates
// the tree in place (ids are kept).
func (c *Catalog) ApplyBundledTemplate(ctx context.Context, name, hash string, t *Template) (bool, error) {
	scripts, err := c.checkTemplate(t)
	if err != nil {
		return false, fmt.Errorf("bundled template %s: %w", name, err)
	}
	applied := false
	system := Caller{OperatorRole: RoleAdmin, OperatorName: "bundled-templates"}
	err = c.update(ctx, func(tx Tx) error {
		old, err := tx.BundledTemplateHash(ctx, name)
		if err != nil || old == hash {
			return err
		}
		if err := c.applyTemplate(ctx, tx, system, t, scripts, &TemplateResult{}); err != nil {
			return err
		}
		applied = true
		return tx.MarkBundledTemplate(ctx, name, hash)
	})
	if err != nil {
		return false, fmt.Errorf("bundled template %s: %w", name, err)
	}
	return applied, nil
}

// TemplateName is the key a template is known by: its provider's name.
func (t *Template) TemplateName() string { return strings.TrimSpace(t.Provider.Name) }
