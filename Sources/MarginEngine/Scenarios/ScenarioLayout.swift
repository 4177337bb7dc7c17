/// A volatility state of the MR1 and MR6 grids.
///
/// The order is the tie-break order: when cells tie, the earlier state is reported (`up` first, as
/// golden case 1 requires).
public enum VolatilityState: Int, Sendable, CaseIterable {
    case up = 0
    case same = 1
    case down = 2

    /// OKX's name in `mr1FinalResult.volShock`.
    public var okxName: String {
        switch self {
        case .up: "up"
        case .same: "unchange"
        case .down: "down"
        }
    }

    /// OKX's key in `mr1Scenarios`.
    public var scenarioKey: String {
        switch self {
        case .up: "volShockUp"
        case .same: "volSame"
        case .down: "volShockDown"
        }
    }
}

/// The fixed order of the stress scenarios of one risk tier, shared by every instrument's scenario vector.
///
/// A scenario vector holds, for one contract (or one coin of spot in use), the P&L in USD under:
/// ```
/// [0, 21)   MR1: 7 spot moves (ascending) × 3 volatility states, index = state·7 + move
/// [21, 27)  MR6: 2 extreme moves (−, +) × 3 volatility states, index = 21 + state·2 + move
/// 27, 28    MR4: curve up, curve down
/// 29        MR2: one horizon of time decay
/// 30, 31    MR5: rate up, rate down
/// ```
/// An account's scenario P&L is then `Σ position × vector`, with no pricing per account (SPAN's lesson).
public struct ScenarioLayout: Sendable, Equatable {
    public static let mr1MoveCount = 7
    public static let mr1CellCount = 21
    public static let mr6Start = 21
    public static let mr6CellCount = 6
    public static let mr4Up = 27
    public static let mr4Down = 28
    public static let mr2 = 29
    public static let mr5Up = 30
    public static let mr5Down = 31
    public static let count = 32

    /// The seven MR1 spot moves, ascending (`-0.12 … 0.12` for tier 1).
    public let mr1Moves: [Double]
    /// The two MR6 moves (`-0.24, 0.24` for tier 1).
    public let mr6Moves: [Double]

    public init(_ parameters: TierParameters) {
        let positive = parameters.mr1SpotMoves
        mr1Moves = positive.reversed().map { -$0 } + [0] + positive
        mr6Moves = [-parameters.mr6ExtremeMove, parameters.mr6ExtremeMove]
    }

    @inlinable public static func mr1Index(move: Int, state: VolatilityState) -> Int { state.rawValue * mr1MoveCount + move }
    @inlinable public static func mr6Index(move: Int, state: VolatilityState) -> Int { mr6Start + state.rawValue * 2 + move }

    /// MR1 move indices in tie-break order: 0, then −m1, +m1, −m2, +m2, … (smaller moves, then falls, first).
    public static let mr1SearchOrder: [Int] = [3, 2, 4, 1, 5, 0, 6]
}
