package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Chart geometry, in SVG user units.
const (
	chartColumnWidth = 470 // one column per mode
	chartLabelWidth  = 150 // room for the group labels left of the bars
	chartBarHeight   = 11
	chartGroupGap    = 14
	chartTop         = 70
	chartMinRate     = 100.0 // the log axis starts here
)

var chartColors = []string{"#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// chart draws messages per second delivered as grouped horizontal bars on a log
// axis, one column per mode, one group per workload and depth, one bar per server.
func (r *report) chart() []byte {
	modes := r.modes()
	rows := 0
	for _, m := range modes {
		rows = max(rows, len(r.shapes(m)))
	}
	groupHeight := len(r.Servers)*chartBarHeight + chartGroupGap
	width := len(modes)*(chartColumnWidth+chartLabelWidth) + 20
	height := chartTop + rows*groupHeight + 40

	top := r.axisTop()
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" `+
		`font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="18" font-size="14" font-weight="bold">`+
		`Messages per second delivered (log scale), %s per cell</text>`+"\n",
		html.EscapeString(r.Duration))
	r.legend(&b)
	for i, mode := range modes {
		left := i*(chartColumnWidth+chartLabelWidth) + chartLabelWidth
		r.column(&b, mode, left, groupHeight, rows, top)
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

func (r *report) legend(b *strings.Builder) {
	x := 10
	for i, s := range r.Servers {
		fmt.Fprintf(b, `<rect x="%d" y="30" width="10" height="10" fill="%s"/>`+
			`<text x="%d" y="39">%s</text>`+"\n",
			x, chartColors[i%len(chartColors)], x+14, html.EscapeString(s.Name))
		x += 30 + 7*len(s.Name)
	}
}

// column draws one mode: axis lines at each power of ten, then the bars.
func (r *report) column(b *strings.Builder, mode string, left, groupHeight, rows int,
	top float64) {
	bottom := chartTop + rows*groupHeight
	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n",
		left, chartTop-12, html.EscapeString(modeTitles[mode]))
	for v := chartMinRate; v <= top; v *= 10 {
		x := left + scale(v, top)
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/>`+
			`<text x="%d" y="%d" text-anchor="middle" fill="#666">%s</text>`+"\n",
			x, chartTop-4, x, bottom, x, bottom+14, axisLabel(v))
	}
	for g, sh := range r.shapes(mode) {
		y := chartTop + g*groupHeight
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%s, %s</text>`+"\n",
			left-6, y+len(r.Servers)*chartBarHeight/2+4, html.EscapeString(sh.workload),
			sh.level)
		for i, s := range r.Servers {
			c, _ := r.find(s.Name, mode, sh.workload, sh.level)
			r.bar(b, c, left, y+i*chartBarHeight, chartColors[i%len(chartColors)], top)
		}
	}
}

func (r *report) bar(b *strings.Builder, c cell, left, y int, color string, top float64) {
	if c.Result == nil || c.MsgsPerSec <= 0 {
		fmt.Fprintf(b, `<text x="%d" y="%d" fill="#999" font-size="9">%s</text>`+"\n",
			left+4, y+chartBarHeight-2, html.EscapeString(cellText(c, "")))
		return
	}
	w := max(scale(c.MsgsPerSec, top), 1)
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+
		`<text x="%d" y="%d" font-size="9">%s</text>`+"\n",
		left, y, w, chartBarHeight-2, color, left+w+3, y+chartBarHeight-2,
		html.EscapeString(cellText(c, fmtRate(c.MsgsPerSec))))
}

// axisTop is the power of ten above the highest rate, where the axis ends.
func (r *report) axisTop() float64 {
	top := chartMinRate * 10
	for _, c := range r.Cells {
		for top < c.MsgsPerSec {
			top *= 10
		}
	}
	return top
}

// scale maps a rate to a distance from the column's left edge on an axis ending at top.
func scale(v, top float64) int {
	v = min(max(v, chartMinRate), top)
	span := math.Log10(top) - math.Log10(chartMinRate)
	return int(float64(chartColumnWidth-60) * (math.Log10(v) - math.Log10(chartMinRate)) / span)
}

func axisLabel(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}
