/// `numerator / denominator` for the ratios an account reports (margin ratio, account leverage), or nil
/// when the denominator is zero or the quotient overflows. A requirement or equity so small that dividing by
/// it leaves the Double range (a 1e-320-contract position's MMR, found by fuzzing) is reported like zero:
/// as "nothing required" / "no equity", never as infinity.
@inlinable
func reportedRatio(_ numerator: Double, over denominator: Double) -> Double? {
    guard denominator != 0 else { return nil }
    let ratio = numerator / denominator
    return ratio.isFinite ? ratio : nil
}
