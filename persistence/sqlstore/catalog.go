package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"phoneshop/catalog"
)

// SearchPhones implements catalog.Store with keyset paging on (sort key, id).
func (s *Store) SearchPhones(ctx context.Context, q catalog.Query) (_ []catalog.Summary, err error) {
	defer s.classify(&err)
	var where []string
	var args []any
	for _, w := range q.Words {
		where = append(where, `p.search_text LIKE ? ESCAPE '!'`)
		args = append(args, "%"+escapeLike(strings.ToLower(w))+"%")
	}
	if q.Brand != "" {
		where = append(where, `LOWER(p.brand) = ?`)
		args = append(args, strings.ToLower(q.Brand))
	}
	if q.FiveG != nil {
		where = append(where, `p.five_g = ?`)
		args = append(args, *q.FiveG)
	}
	// Variant-level filters: a phone matches when one of its variants matches them all.
	var vwhere []string
	if q.MinPrice != nil {
		vwhere = append(vwhere, `v.price_cents >= ?`)
		args = append(args, *q.MinPrice)
	}
	if q.MaxPrice != nil {
		vwhere = append(vwhere, `v.price_cents <= ?`)
		args = append(args, *q.MaxPrice)
	}
	if q.StorageGB != nil {
		vwhere = append(vwhere, `v.storage_gb = ?`)
		args = append(args, *q.StorageGB)
	}
	if q.InStock {
		vwhere = append(vwhere, `COALESCE(sl.available, 0) > 0`)
	}
	if len(vwhere) > 0 {
		where = append(where, `EXISTS (SELECT 1 FROM phone_variants v LEFT JOIN stock_levels sl ON sl.sku = v.sku
			WHERE v.phone_id = p.id AND `+strings.Join(vwhere, " AND ")+`)`)
	}

	var key, dir string
	switch q.Sort {
	case catalog.SortPrice:
		key, dir = "p.from_price_cents", ">"
	case catalog.SortPriceDesc:
		key, dir = "p.from_price_cents", "<"
	case catalog.SortReleaseYearNew:
		key, dir = "p.release_year", "<"
	default:
		key, dir = "p.name", ">"
	}
	if c := q.After; c != nil {
		var v any = c.Int
		if key == "p.name" {
			v = c.Str
		}
		where = append(where, fmt.Sprintf(`(%s %s ? OR (%s = ? AND p.id > ?))`, key, dir, key))
		args = append(args, v, v, c.ID)
	}
	order := key
	if dir == "<" {
		order += " DESC"
	}
	query := `SELECT p.id, p.brand, p.model, p.name, p.release_year, p.from_price_cents, p.image_url,
		COALESCE((SELECT MAX(sl.available) FROM phone_variants v JOIN stock_levels sl ON sl.sku = v.sku WHERE v.phone_id = p.id), 0)
		FROM phones p`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += fmt.Sprintf(" ORDER BY %s, p.id LIMIT ?", order)
	args = append(args, q.PageSize+1)

	rows, err := s.reader.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []catalog.Summary
	for rows.Next() {
		var p catalog.Summary
		if err := rows.Scan(&p.ID, &p.Brand, &p.Model, &p.Name, &p.ReleaseYear, &p.FromPriceCents, &p.ImageURL, &p.MaxAvailable); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// escapeLike escapes LIKE's wildcards with '!' (an escape character both SQLite and
// MySQL accept without backslash-mode surprises).
func escapeLike(s string) string {
	return strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(s)
}

// Phone implements catalog.Store.
func (s *Store) Phone(ctx context.Context, id string) (_ catalog.Phone, err error) {
	defer s.classify(&err)
	var p catalog.Phone
	err = s.reader.QueryRowContext(ctx, `SELECT id, brand, model, name, category, release_year, image_url,
		display_inches, chipset, ram_gb, battery_mah, main_camera_mp, five_g, os FROM phones WHERE id = ?`, id).
		Scan(&p.ID, &p.Brand, &p.Model, &p.Name, &p.Category, &p.ReleaseYear, &p.ImageURL,
			&p.Specs.DisplayInches, &p.Specs.Chipset, &p.Specs.RAMGB, &p.Specs.BatteryMAH, &p.Specs.MainCameraMP, &p.Specs.FiveG, &p.Specs.OS)
	if errors.Is(err, sql.ErrNoRows) {
		return catalog.Phone{}, catalog.ErrNotFound
	}
	if err != nil {
		return catalog.Phone{}, err
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT v.sku, v.phone_id, v.storage_gb, v.color, v.price_cents, v.initial_stock, COALESCE(sl.available, 0)
		FROM phone_variants v LEFT JOIN stock_levels sl ON sl.sku = v.sku WHERE v.phone_id = ? ORDER BY v.position`, id)
	if err != nil {
		return catalog.Phone{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var v catalog.Variant
		if err := rows.Scan(&v.SKU, &v.PhoneID, &v.StorageGB, &v.Color, &v.PriceCents, &v.InitialStock, &v.Available); err != nil {
			return catalog.Phone{}, err
		}
		p.Variants = append(p.Variants, v)
	}
	return p, rows.Err()
}

// Brands implements catalog.Store.
func (s *Store) Brands(ctx context.Context) (_ []catalog.Brand, err error) {
	defer s.classify(&err)
	rows, err := s.reader.QueryContext(ctx, `SELECT brand, COUNT(*) FROM phones GROUP BY brand ORDER BY brand`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []catalog.Brand
	for rows.Next() {
		var b catalog.Brand
		if err := rows.Scan(&b.Name, &b.PhoneCount); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// VariantsBySKU implements catalog.Store; unknown SKUs are absent from the result.
func (s *Store) VariantsBySKU(ctx context.Context, skus []string) (_ map[string]catalog.Variant, err error) {
	defer s.classify(&err)
	out := make(map[string]catalog.Variant, len(skus))
	if len(skus) == 0 {
		return out, nil
	}
	args := make([]any, len(skus))
	for i, sku := range skus {
		args[i] = sku
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT v.sku, v.phone_id, p.name, p.brand, v.storage_gb, v.color, v.price_cents, v.initial_stock, COALESCE(sl.available, 0)
		FROM phone_variants v JOIN phones p ON p.id = v.phone_id LEFT JOIN stock_levels sl ON sl.sku = v.sku
		WHERE v.sku IN (?`+strings.Repeat(",?", len(skus)-1)+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var v catalog.Variant
		if err := rows.Scan(&v.SKU, &v.PhoneID, &v.PhoneName, &v.Brand, &v.StorageGB, &v.Color, &v.PriceCents, &v.InitialStock, &v.Available); err != nil {
			return nil, err
		}
		out[v.SKU] = v
	}
	return out, rows.Err()
}

// SeedCatalog inserts phones when the catalog is empty, in one transaction, and
// reports whether it did.
func (s *Store) SeedCatalog(ctx context.Context, phones []catalog.Phone) (_ bool, err error) {
	defer s.classify(&err)
	var n int
	if err := s.writer.QueryRowContext(ctx, `SELECT COUNT(*) FROM phones`).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		categories := map[string]bool{}
		for _, p := range phones {
			if !categories[p.Category] {
				categories[p.Category] = true
				if _, err := tx.ExecContext(ctx, `INSERT INTO categories (name) VALUES (?)`, p.Category); err != nil {
					return err
				}
			}
			search := strings.ToLower(p.Brand + " " + p.Model + " " + p.Name)
			if _, err := tx.ExecContext(ctx, `INSERT INTO phones (id, brand, model, name, category, release_year, image_url,
				display_inches, chipset, ram_gb, battery_mah, main_camera_mp, five_g, os, from_price_cents, search_text)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				p.ID, p.Brand, p.Model, p.Name, p.Category, p.ReleaseYear, p.ImageURL,
				p.Specs.DisplayInches, p.Specs.Chipset, p.Specs.RAMGB, p.Specs.BatteryMAH, p.Specs.MainCameraMP, p.Specs.FiveG, p.Specs.OS,
				p.FromPriceCents(), search); err != nil {
				return fmt.Errorf("phone %s: %w", p.ID, err)
			}
			for i, v := range p.Variants {
				if _, err := tx.ExecContext(ctx, `INSERT INTO phone_variants (sku, phone_id, position, storage_gb, color, price_cents, initial_stock)
					VALUES (?, ?, ?, ?, ?, ?, ?)`, v.SKU, p.ID, i, v.StorageGB, v.Color, v.PriceCents, v.InitialStock); err != nil {
					return fmt.Errorf("variant %s: %w", v.SKU, err)
				}
			}
		}
		return nil
	})
	if s.dialect.IsDuplicate(err) {
		return false, nil // another process of the cluster seeded it meanwhile
	}
	return err == nil, err
}

// UnstockedVariants lists the variants whose initial stock was never received by
// their inventory grain (no stock level recorded yet).
func (s *Store) UnstockedVariants(ctx context.Context) (_ []catalog.Variant, err error) {
	defer s.classify(&err)
	rows, err := s.reader.QueryContext(ctx, `SELECT v.sku, v.phone_id, v.initial_stock FROM phone_variants v
		LEFT JOIN stock_levels sl ON sl.sku = v.sku WHERE sl.sku IS NULL AND v.initial_stock > 0 ORDER BY v.sku`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []catalog.Variant
	for rows.Next() {
		var v catalog.Variant
		if err := rows.Scan(&v.SKU, &v.PhoneID, &v.InitialStock); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
