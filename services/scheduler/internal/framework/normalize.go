package framework

// NormalizeMax scales scores so that the highest becomes MaxNodeScore; all
// zeros stay zero.
func NormalizeMax(scores NodeScoreList) {
	var hi int64
	for _, s := range scores {
		hi = max(hi, s.Score)
	}
	if hi == 0 {
		return
	}
	for i := range scores {
		scores[i].Score = scores[i].Score * MaxNodeScore / hi
	}
}

// NormalizeReverse scales scores so that the highest becomes 0 and zero
// becomes MaxNodeScore: for raw scores where less is better.
func NormalizeReverse(scores NodeScoreList) {
	var hi int64
	for _, s := range scores {
		hi = max(hi, s.Score)
	}
	for i := range scores {
		if hi == 0 {
			scores[i].Score = MaxNodeScore
			continue
		}
		scores[i].Score = MaxNodeScore - scores[i].Score*MaxNodeScore/hi
	}
}

// NormalizeMinMax scales scores linearly from [min, max] to
// [MinNodeScore, MaxNodeScore]; equal scores all become MinNodeScore.
func NormalizeMinMax(scores NodeScoreList) {
	if len(scores) == 0 {
		return
	}
	lo, hi := scores[0].Score, scores[0].Score
	for _, s := range scores {
		lo, hi = min(lo, s.Score), max(hi, s.Score)
	}
	for i := range scores {
		if hi == lo {
			scores[i].Score = MinNodeScore
			continue
		}
		scores[i].Score = MinNodeScore + (scores[i].Score-lo)*(MaxNodeScore-MinNodeScore)/(hi-lo)
	}
}
