package appliance

import (
	"fmt"
	"net/url"
	"strconv"
)

// The page sizes of the lists the admin pages show (the inventory), chosen with
// ?per_page= and walked with ?page= (from 1).
const (
	defaultPerPage = 50
	maxPerPage     = 200
)

// paging is one page of a list of Total items: items [From, To), with the queries of
// the previous and next pages ("" when there is none).
type paging struct {
	Page, PerPage, Pages, Total int
	From, To                    int
	Prev, Next                  string
}

// pageOf reads page and per_page from q for a list of total items; a bad value is an
// error naming the parameter.
func pageOf(q url.Values, total int) (paging, error) {
	p := paging{Page: 1, PerPage: defaultPerPage, Total: total}
	for _, f := range []struct {
		name string
		dst  *int
		max  int
	}{{"page", &p.Page, 1 << 20}, {"per_page", &p.PerPage, maxPerPage}} {
		s := q.Get(f.name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > f.max {
			return p, fmt.Errorf("%s: want a number from 1 to %d, got %q", f.name, f.max, s)
		}
		*f.dst = n
	}
	p.Pages = max(1, (total+p.PerPage-1)/p.PerPage)
	p.Page = min(p.Page, p.Pages)
	p.From = min(total, (p.Page-1)*p.PerPage)
	p.To = min(total, p.From+p.PerPage)
	link := func(page int) string {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Set("page", strconv.Itoa(page))
		return v.Encode()
	}
	if p.Page > 1 {
		p.Prev = link(p.Page - 1)
	}
	if p.Page < p.Pages {
		p.Next = link(p.Page + 1)
	}
	return p, nil
}
