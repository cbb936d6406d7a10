package pipeline

import "strings"

// suggest returns the candidate closest to word when it is close enough to
// be a typo, or "" when none is. Case is ignored, so "Image" suggests
// "image".
func suggest(word string, candidates []string) string {
	word = strings.ToLower(word)
	maxDistance := 2
	if len([]rune(word)) <= 3 {
		maxDistance = 1
	}
	best, bestDistance := "", maxDistance+1
	for _, c := range candidates {
		if d := editDistance(word, strings.ToLower(c)); d < bestDistance {
			best, bestDistance = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: the number of
// inserted, deleted or substituted runes and swapped adjacent runes needed
// to turn a into b. Counting a swap as one edit lets "imgae" suggest "image".
func editDistance(a, b string) int {
	s, t := []rune(a), []rune(b)
	// rows[i][j] is the distance between s[:i] and t[:j].
	rows := make([][]int, len(s)+1)
	for i := range rows {
		rows[i] = make([]int, len(t)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(s); i++ {
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			d := min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				d = min(d, rows[i-2][j-2]+1)
			}
			rows[i][j] = d
		}
	}
	return rows[len(s)][len(t)]
}
