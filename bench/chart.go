package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

type bar struct {
	label string
	ratio float64
}

// Chart geometry, in pixels. charW over-estimates the average width of a
// 12 px sans-serif character so that labels measured with it always fit.
const (
	charW     = 7.0
	plotW     = 440
	rowH      = 24
	top       = 44
	valueW    = 100 // the printed ratio, right of the plot
	maxLog2   = 3   // the axis ends at 8x; longer bars are capped
	minLog2   = -3  // and at 1/8x
	padding   = 10
	captionLH = 16
)

// ratioSVG draws each ratio as a bar from the 1.0x line on a log2 axis, so
// 2x and 0.5x are the same length. A ratio beyond the axis gets a capped bar
// with a break mark; every bar's value is printed beside the plot. caption
// lines (date, machine, command) are wrapped under the axis.
func ratioSVG(title string, caption []string, bars []bar) string {
	left := padding + int(math.Ceil(float64(lenLabel(bars))*charW)) + 8
	width := left + plotW + valueW
	// axis range: whole powers of two around the data, within the caps
	lo, hi := -1, 1
	for _, b := range bars {
		if b.ratio > 0 {
			l := math.Log2(b.ratio)
			lo = min(lo, max(int(math.Floor(l)), minLog2))
			hi = max(hi, min(int(math.Ceil(l)), maxLog2))
		}
	}
	x := func(r float64) float64 {
		l := math.Log2(r)
		l = math.Max(float64(lo), math.Min(float64(hi), l))
		return float64(left) + float64(plotW)*(l-float64(lo))/float64(hi-lo)
	}
	var lines []string
	for _, c := range caption {
		lines = append(lines, wrap(c, int(float64(width-2*padding)/charW))...)
	}
	axisY := top + rowH*len(bars) + 4
	height := axisY + 22 + captionLH*len(lines) + padding

	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&s, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&s, `<text x="%d" y="24" font-size="14" font-weight="bold">%s</text>`+"\n", padding, esc(title))
	for k := lo; k <= hi; k++ {
		r := math.Pow(2, float64(k))
		gx := x(r)
		stroke := `stroke="#ddd"`
		if k == 0 {
			stroke = `stroke="black" stroke-dasharray="4"`
		}
		fmt.Fprintf(&s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" %s/>`, gx, top-6, gx, axisY, stroke)
		fmt.Fprintf(&s, `<text x="%.1f" y="%d" text-anchor="middle">%sx</text>`+"\n", gx, axisY+14, ratioTick(r))
	}
	x1 := x(1)
	for i, b := range bars {
		y := top + i*rowH
		color := "#2e7d32"
		if b.ratio < 1 {
			color = "#c62828"
		}
		bx := x(b.ratio)
		fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="end">%s</text>`, left-8, y+14, esc(b.label))
		fmt.Fprintf(&s, `<rect x="%.1f" y="%d" width="%.1f" height="16" fill="%s"/>`, math.Min(x1, bx), y+2, math.Max(math.Abs(bx-x1), 1), color)
		capped := b.ratio > 0 && (math.Log2(b.ratio) > float64(hi) || math.Log2(b.ratio) < float64(lo))
		if capped { // a white zig-zag through the bar's end says it runs on
			end := bx - 6
			if b.ratio < 1 {
				end = bx + 2
			}
			fmt.Fprintf(&s, `<path d="M%.1f %d l4 5 l-4 6 l4 5" stroke="white" stroke-width="2" fill="none"/>`, end, y+2)
		}
		value := fmt.Sprintf("%.2fx", b.ratio)
		if capped {
			value += " (cut)"
		}
		fmt.Fprintf(&s, `<text x="%d" y="%d">%s</text>`+"\n", left+plotW+8, y+14, value)
	}
	for i, l := range lines {
		fmt.Fprintf(&s, `<text x="%d" y="%d" fill="#444">%s</text>`+"\n", padding, axisY+22+captionLH*(i+1)-4, esc(l))
	}
	s.WriteString("</svg>\n")
	return s.String()
}

func lenLabel(bars []bar) int {
	n := 0
	for _, b := range bars {
		n = max(n, len(b.label))
	}
	return n
}

func ratioTick(r float64) string {
	if r >= 1 {
		return fmt.Sprintf("%.0f", r)
	}
	return strings.TrimRight(fmt.Sprintf("%.3f", r), "0")
}

// wrap breaks s at spaces into lines of at most n characters (a longer word
// gets a line of its own).
func wrap(s string, n int) []string {
	var lines []string
	cur := ""
	for _, w := range strings.Fields(s) {
		if cur != "" && len(cur)+1+len(w) > n {
			lines = append(lines, cur)
			cur = ""
		}
		if cur != "" {
			cur += " "
		}
		cur += w
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

func esc(s string) string { return html.EscapeString(s) }
