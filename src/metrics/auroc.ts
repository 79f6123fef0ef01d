/**
 * Area under the ROC curve by the rank statistic (Mann–Whitney U), with tied scores sharing their average
 * rank; this equals scikit-learn's trapezoidal `roc_auc_score`, which treats tied scores as one threshold.
 */

/** Binary AUROC of `scores` for `positive[i]` labels; null when only one class is present. */
export function binaryAuroc(positive: ArrayLike<boolean>, scores: ArrayLike<number>): number | null {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let nPos = 0;
  let rankSumPos = 0;
  for (let start = 0; start < n; ) {
    let end = start + 1;
    while (end < n && scores[order[end]!] === scores[order[start]!]) end++;
    // Ranks start..end-1 (1-based start+1..end) share their mean.
    const meanRank = (start + 1 + end) / 2;
    for (let k = start; k < end; k++) {
      if (positive[order[k]!]) {
        nPos++;
        rankSumPos += meanRank;
      }
    }
    start = end;
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return null;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}
