// The engine's step on a CPU as one native call (heartgrid/engine/native.py builds and calls it).
//
// It does what BatchedEngine does with its tensor step (RULES.md steps 1-6, the refresh of the
// grid's feature rows, then step 7: the observation windows and their global features) on the
// same World tensors and buffers, in the same order within an env: decode, converters, the
// action kinds one after another (every agent of a kind reads the state the previous kind
// left; claims are resolved before any effect), costs and counts, rewards, feature rows,
// windows. Envs never interact, so the batch is stepped one env at a time, each env's grid
// and agents staying in the cache from its first phase to its windows. A tensor step is ~250
// small operations whose cost is per-operation dispatch (~3.5 us each); here each is a loop
// over an env's agents or converters.
//
// Plain C++17 with C linkage and no PyTorch headers, so it builds in about a second; the
// tensors arrive as pointers in `HgStep`, which native.py builds from `HG_FIELDS` (below).
// Everything is integer arithmetic except the rewards, computed in double as the tensor step
// and reference.py do, every sum adding its terms in index order, as the tensor step's
// `sum_in_order` does (state.py), and every a*b+c rounded twice (no FMA: native.py's flags):
// the float64 state is the tensor step's to the last bit.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

namespace {

constexpr int kItems = 10;
constexpr int kConverterChannels = 12;  // converting, swappable, inv:<item> x 10 (state.py)
constexpr int kScan = 9;                // attack scan positions (actions.py)
enum ItemStat { kGained = 0, kLost = 1, kGet = 2, kPut = 3, kStolen = 4 };

}  // namespace

// Everything the step reads and writes, as (C type, name). native.py builds its ctypes
// structure from this list (`hg_fields`), taking each pointer from the tensor of that name and
// checking its dtype against the C type, so the two sides cannot disagree on an order or type.
#define HG_FIELDS(X)                                                                             \
    /* Dims: counters' columns include the trash column; stats do not. */                      \
    X(int64_t, slots) X(int64_t, num_agents) X(int64_t, num_envs) X(int64_t, converters)       \
    X(int64_t, num_features) X(int64_t, num_types) X(int64_t, max_args)                        \
    X(int64_t, num_counters) X(int64_t, num_stats)                                             \
    X(int64_t, obs_height) X(int64_t, obs_width) X(int64_t, padded_width)                      \
    /* Grid channels and codes (last_action_arg is last_action + 1). */                        \
    X(int64_t, type_channel) X(int64_t, swappable_channel) X(int64_t, agent_code)              \
    X(int64_t, frozen_channel) X(int64_t, orientation_channel) X(int64_t, color_channel)       \
    X(int64_t, inventory_channel) X(int64_t, completion_channel)                               \
    X(int64_t, last_action_channel) X(int64_t, last_reward_channel)                            \
    /* Action type ids (-1: not enabled) and the counters' columns. */                         \
    X(int64_t, t_attack) X(int64_t, t_swap) X(int64_t, t_rotate) X(int64_t, t_put)             \
    X(int64_t, t_get) X(int64_t, t_color) X(int64_t, t_noop)                                   \
    X(int64_t, col_invalid_type) X(int64_t, col_invalid_arg) X(int64_t, col_blocked)           \
    X(int64_t, col_frozen_ticks) X(int64_t, col_trash)                                         \
    /* Tables: decode.py's rows [K + 2, 3] (type, arg, move offset) and validity; actions.py's \
       cell deltas ahead [4], attack scan [4, 9], move deltas and turns [T * max_args * 4]. */   \
    X(const uint8_t*, is_move) X(const int64_t*, decode_rows) X(const uint8_t*, decode_valid)  \
    X(int64_t, decode_len) X(const int64_t*, num_args) X(const int64_t*, forward)              \
    X(const int64_t*, scan) X(const int64_t*, move_delta) X(const int64_t*, move_turn)         \
    /* The World (state.py). */                                                                \
    X(uint8_t*, planes) X(int64_t*, agent_at) X(const int64_t*, conv_at)                       \
    X(int64_t*, agent_cell) X(int64_t*, agent_orientation) X(int16_t*, agent_inventory)        \
    X(int16_t*, agent_frozen) X(uint8_t*, agent_color) X(int64_t*, agent_last_action)          \
    X(float*, agent_episode_reward) X(double*, agent_inventory_value)                          \
    X(int32_t*, agent_item_stats) X(int32_t*, agent_counts)                                    \
    X(int64_t*, env_step) X(const int64_t*, env_length)                                        \
    X(const int64_t*, conv_feature_index) X(int16_t*, conv_inventory) X(int32_t*, conv_timer)  \
    X(int32_t*, conv_conversions) X(int32_t*, conv_blocked) X(const int16_t*, conv_input)      \
    X(const int16_t*, conv_output) X(const int16_t*, conv_output_mask)                         \
    X(const int32_t*, conv_finish_at) X(const int32_t*, conv_busy_time)                        \
    X(const int32_t*, conv_max_output) X(const int32_t*, conv_max_conversions)                 \
    X(const int16_t*, slot_item_max) X(const int16_t*, slot_freeze)                            \
    X(const int16_t*, slot_attack_cost) X(const int16_t*, slot_attack_need)                    \
    X(const int16_t*, slot_defense) X(const uint8_t*, slot_has_defense)                        \
    X(const double*, param_reward_weight) X(const double*, param_reward_cap)                   \
    X(const double*, param_stat_weight) X(const double*, param_stat_cap)                       \
    X(const double*, param_group_pct) X(const int16_t*, param_action_need)                     \
    X(const int16_t*, param_action_cost) X(const double*, param_action_penalty)                \
    /* The observer's agent feature rows [S, F] (it keeps the group column), this step's      \
       rewards [S] and observation windows [S, H, W, F], and the claims scratch: one entry     \
       per possible target (cells, slots, 2 x converters), -1 everywhere between calls. */     \
    X(uint8_t*, agent_rows) X(float*, rewards) X(uint8_t*, obs) X(int64_t*, claims)

extern "C" {

struct HgStep {
#define HG_MEMBER(type, name) type name;
    HG_FIELDS(HG_MEMBER)
#undef HG_MEMBER
};

}  // extern "C"

namespace {

struct Step {
    const HgStep& w;
    const int64_t S, A, C, F, T;
    const bool needs, costs, penalties, stat_rewards, sharing;
    int64_t env = 0, s0 = 0, s1 = 0, c0 = 0, c1 = 0;  // the env being stepped: its slots and converters
    std::vector<int64_t> type, arg, offset, target, attacker;
    std::vector<uint8_t> acting, success, affordable, claim, dirty, hit;
    std::vector<int16_t> before, taken;
    std::vector<int32_t> stats_before, after;
    std::vector<double> reward;

    Step(const HgStep& world, int64_t flags)
        : w(world), S(world.slots), A(world.num_agents), C(world.converters), F(world.num_features),
          T(world.num_types), needs(flags & 1), costs(flags & 2), penalties(flags & 4),
          stat_rewards(flags & 8), sharing(flags & 16),
          type(S), arg(S), offset(S), target(S), attacker(S), acting(S), success(S, 0), affordable(S),
          claim(S), dirty(C, 0), hit(S), before(S * kItems), taken(S * kItems), reward(S) {}

    int16_t* inventory(int64_t s) const { return w.agent_inventory + s * kItems; }
    int32_t* item_stat(int kind, int64_t s) const {
        return w.agent_item_stats + (kind * S + s) * kItems;
    }
    int32_t& count(int64_t s, int64_t column) const { return w.agent_counts[s * w.num_counters + column]; }
    uint8_t* cell(int64_t c) const { return w.planes + c * F; }
    int64_t param_row(int64_t s) const { return (s / A) * T + type[s]; }
    bool doing(int64_t s, int64_t t) const { return t >= 0 && acting[s] && type[s] == t; }

    static bool holds(const int16_t* have, const int16_t* need) {
        for (int i = 0; i < kItems; ++i)
            if (have[i] - need[i] < 0) return false;
        return true;
    }

    // The highest key among the claimants of each target wins (keys are unique within an
    // env, targets global, so envs never meet); `claim`/`target` in, winners out in `claim`.
    void resolve(const int64_t* key) {
        for (int64_t s = s0; s < s1; ++s)
            if (claim[s]) w.claims[target[s]] = std::max(w.claims[target[s]], key[s]);
        for (int64_t s = s0; s < s1; ++s)
            if (claim[s]) claim[s] = w.claims[target[s]] == key[s] ? 1 : 2;  // 2: lost
        for (int64_t s = s0; s < s1; ++s) {
            if (claim[s]) w.claims[target[s]] = -1;
            claim[s] = claim[s] == 1;
        }
    }

    void decode(const int64_t* actions, bool pairs) {
        for (int64_t s = s0; s < s1; ++s) {
            bool valid;
            if (!pairs) {
                int64_t index = std::clamp<int64_t>(actions[s] + 1, 0, w.decode_len - 1);
                const int64_t* row = w.decode_rows + index * 3;
                type[s] = row[0], arg[s] = row[1], offset[s] = row[2];
                valid = w.decode_valid[index];
                count(s, w.col_invalid_type) += !valid;
            } else {
                int64_t t = actions[2 * s], a = actions[2 * s + 1];
                bool type_ok = t >= 0 && t < T;
                valid = type_ok && a >= 0 && a < w.num_args[std::clamp<int64_t>(t, 0, T - 1)];
                type[s] = valid ? t : 0, arg[s] = valid ? a : 0;
                offset[s] = (type[s] * w.max_args + arg[s]) * 4;
                count(s, w.col_invalid_type) += !type_ok;
                count(s, w.col_invalid_arg) += type_ok && !valid;
            }
            if (valid) w.agent_last_action[2 * s] = type[s], w.agent_last_action[2 * s + 1] = arg[s];
            bool frozen = w.agent_frozen[s] > 0;
            if (frozen) w.agent_frozen[s] -= 1;
            count(s, w.col_frozen_ticks) += frozen;
            acting[s] = valid && !frozen;
        }
    }

    // Step 3 (converters.py): one countdown per converter; outputs appear at finish_at.
    void advance_converters() {
        for (int64_t c = c0; c < c1; ++c) {
            int32_t& timer = w.conv_timer[c];
            int16_t* inv = w.conv_inventory + c * kItems;
            if (timer == w.conv_finish_at[c]) {
                for (int i = 0; i < kItems; ++i) inv[i] += w.conv_output[c * kItems + i];
                w.conv_conversions[c] += 1;
                dirty[c] = 1;
            }
            if (timer == 1) dirty[c] = 1;  // reaches 0: `converting` (timer > 0) turns off
            timer = std::max(timer - 1, 0);
            if (timer != 0) continue;
            bool ready = holds(inv, w.conv_input + c * kItems) &&
                         w.conv_conversions[c] < w.conv_max_conversions[c];
            if (!ready) continue;
            int32_t held = 0;
            for (int i = 0; i < kItems; ++i) held += inv[i] * w.conv_output_mask[c * kItems + i];
            if (held < w.conv_max_output[c]) {
                for (int i = 0; i < kItems; ++i) inv[i] -= w.conv_input[c * kItems + i];
                timer = w.conv_busy_time[c];
                dirty[c] = 1;
            } else {
                w.conv_blocked[c] += 1;
            }
        }
    }

    const int16_t* need(int64_t s) const { return w.param_action_need + param_row(s) * kItems; }

    void attack(const int64_t* key) {
        bool any = false;
        for (int64_t s = s0; s < s1; ++s) {
            claim[s] = 0;
            if (!doing(s, w.t_attack)) continue;
            if (!holds(inventory(s), needs ? need(s) : w.slot_attack_need + s * kItems)) continue;
            // The k-th agent found in scan order (k = arg + 1), else the last one found.
            const int64_t* scan = w.scan + w.agent_orientation[s] * kScan;
            int64_t found[kScan];
            int total = 0;
            for (int j = 0; j < kScan; ++j) {
                int64_t occupant = w.agent_at[w.agent_cell[s] + scan[j]];
                if (occupant >= 0) found[total++] = occupant;
            }
            if (total == 0) continue;
            target[s] = found[std::min<int64_t>(arg[s] + 1, total) - 1];
            claim[s] = any = 1;
        }
        if (!any) return;
        resolve(key);

        // Every winner pays first; targets are distinct, so `attacker` maps a target to its winner.
        std::fill(attacker.begin() + s0, attacker.begin() + s1, -1);
        bool won_any = false;
        for (int64_t s = s0; s < s1; ++s) {
            if (!claim[s]) continue;
            success[s] = 1;
            won_any = true;
            int16_t* inv = inventory(s);
            for (int i = 0; i < kItems; ++i) inv[i] -= w.slot_attack_cost[s * kItems + i];
            attacker[target[s]] = s;
        }
        if (!won_any) return;
        // Defenders pay; then every steal is computed from the counts at that point.
        std::fill(taken.begin() + s0 * kItems, taken.begin() + s1 * kItems, 0);
        std::fill(hit.begin() + s0, hit.begin() + s1, 0);
        for (int64_t v = s0; v < s1; ++v) {
            if (attacker[v] < 0) continue;
            int16_t* inv = inventory(v);
            const int16_t* defense = w.slot_defense + v * kItems;
            if (w.slot_has_defense[v] && holds(inv, defense)) {
                for (int i = 0; i < kItems; ++i) inv[i] -= defense[i];
                count(attacker[v], w.col_blocked) += 1;
            } else {
                hit[v] = 1;
            }
        }
        for (int64_t v = s0; v < s1; ++v) {
            if (!hit[v]) continue;
            bool steals = w.agent_frozen[v] == 0;  // a target frozen before this kind keeps its items
            w.agent_frozen[v] = w.slot_freeze[v];
            if (!steals) continue;
            const int16_t* thief = inventory(attacker[v]);
            const int16_t* limit = w.slot_item_max + attacker[v] * kItems;
            const int16_t* inv = inventory(v);
            for (int i = 0; i < kItems; ++i)
                taken[v * kItems + i] = std::min<int16_t>(inv[i], limit[i] - thief[i]);
        }
        for (int64_t v = s0; v < s1; ++v) {
            if (!hit[v]) continue;
            int16_t *inv = inventory(v), *thief = inventory(attacker[v]);
            int32_t* stolen = item_stat(kStolen, attacker[v]);
            for (int i = 0; i < kItems; ++i) {
                int16_t amount = taken[v * kItems + i];
                inv[i] -= amount, thief[i] += amount, stolen[i] += amount;
            }
        }
    }

    void relocate(int64_t s, int64_t to) {
        w.agent_at[w.agent_cell[s]] = -1;
        w.agent_at[to] = s;
        w.agent_cell[s] = to;
    }

    int64_t faced(int64_t s) const { return w.agent_cell[s] + w.forward[w.agent_orientation[s]]; }

    // The winners of a swap or a move go to their targets. The cell an agent leaves takes the
    // block it swapped with, or is emptied; the target shows an agent (its whole row is
    // written with the feature rows after the step).
    void take_targets(bool swapping) {
        for (int64_t s = s0; s < s1; ++s) {
            if (!claim[s]) continue;
            success[s] = 1;
            uint8_t *left = cell(w.agent_cell[s]), *entered = cell(target[s]);
            if (swapping) {
                std::memcpy(left, entered, F);
                entered[w.swappable_channel] = 0;
            } else {
                std::memset(left, 0, F);
            }
            entered[w.type_channel] = static_cast<uint8_t>(w.agent_code);
            relocate(s, target[s]);
        }
    }

    void swap(const int64_t* key) {
        bool any = false;
        for (int64_t s = s0; s < s1; ++s) {
            claim[s] = doing(s, w.t_swap) && affordable[s] && cell(faced(s))[w.swappable_channel] == 1;
            target[s] = faced(s);
            any |= claim[s];
        }
        if (!any) return;
        resolve(key);
        take_targets(true);
    }

    void move(const int64_t* key) {
        bool any = false;
        for (int64_t s = s0; s < s1; ++s) {
            claim[s] = 0;
            if (!(acting[s] && w.is_move[type[s]])) continue;
            int64_t index = offset[s] + w.agent_orientation[s];
            // move_cardinal (and move_8way args 0-3) face the way they go, even when blocked.
            w.agent_orientation[s] = w.move_turn[index];
            target[s] = w.agent_cell[s] + w.move_delta[index];
            // Emptiness is read before anyone moves: a cell vacated this step stays closed.
            claim[s] = affordable[s] && cell(target[s])[w.type_channel] == 0;
            any |= claim[s];
        }
        if (!any) return;
        resolve(key);
        take_targets(false);
    }

    // put_items, then get_items: separate contests (converter c is target c for a put and
    // C + c for a get), applied in that order, so a get sees what was put.
    void use_converters(const int64_t* key) {
        bool any = false;
        for (int64_t s = s0; s < s1; ++s) {
            bool putting = doing(s, w.t_put) && affordable[s];
            bool getting = doing(s, w.t_get) && affordable[s];
            claim[s] = 0;
            if (!putting && !getting) continue;
            int64_t converter = w.conv_at[faced(s)];
            if (converter < 0) continue;
            target[s] = converter + (getting ? C : 0);
            claim[s] = any = 1;
        }
        if (!any) return;
        resolve(key);
        for (int64_t s = s0; s < s1; ++s) {
            if (!claim[s] || target[s] >= C) continue;
            int64_t c = target[s];
            int16_t *held = w.conv_inventory + c * kItems, *inv = inventory(s);
            int32_t* put = item_stat(kPut, s);
            for (int i = 0; i < kItems; ++i) {
                int16_t missing = std::max<int16_t>(w.conv_input[c * kItems + i] - held[i], 0);
                int16_t moved = std::min(missing, inv[i]);
                inv[i] -= moved, held[i] += moved, put[i] += moved;
                success[s] |= moved > 0;
            }
            dirty[c] = 1;
        }
        for (int64_t s = s0; s < s1; ++s) {
            if (!claim[s] || target[s] < C) continue;
            int64_t c = target[s] - C;
            int16_t *held = w.conv_inventory + c * kItems, *inv = inventory(s);
            int32_t* got = item_stat(kGet, s);
            for (int i = 0; i < kItems; ++i) {
                int16_t output = held[i] * w.conv_output_mask[c * kItems + i];
                int16_t room = std::max<int16_t>(w.slot_item_max[s * kItems + i] - inv[i], 0);
                int16_t moved = std::min(output, room);
                inv[i] += moved, held[i] -= moved, got[i] += moved;
                success[s] |= moved > 0;
            }
            dirty[c] = 1;
        }
    }

    // Step 4 in RULES.md order.
    void kinds(const int64_t* key) {
        if (w.t_attack >= 0) attack(key);
        // Only attacks change another agent's inventory, so later kinds share one check.
        for (int64_t s = s0; s < s1; ++s) affordable[s] = acting[s] && (!needs || holds(inventory(s), need(s)));
        if (w.t_swap >= 0) swap(key);
        move(key);
        for (int64_t s = s0; s < s1; ++s) {
            if (doing(s, w.t_rotate) && affordable[s]) w.agent_orientation[s] = arg[s], success[s] = 1;
        }
        if (w.t_put >= 0 || w.t_get >= 0) use_converters(key);
        for (int64_t s = s0; s < s1; ++s) {
            if (doing(s, w.t_color) && affordable[s]) {
                w.agent_color[s] = static_cast<uint8_t>(w.agent_color[s] + 1 - 2 * arg[s]);  // mod 256
                success[s] = 1;
            }
            if (doing(s, w.t_noop) && affordable[s]) success[s] = 1;
        }
    }

    // Costs of the actions other than attack (paid inside their kind), counts, penalties.
    void outcomes() {
        for (int64_t s = s0; s < s1; ++s) {
            if (costs && success[s] && type[s] != w.t_attack) {
                const int16_t* cost = w.param_action_cost + param_row(s) * kItems;
                int16_t* inv = inventory(s);
                for (int i = 0; i < kItems; ++i) inv[i] -= cost[i];
            }
            bool failed = acting[s] && !success[s];
            count(s, acting[s] ? 2 * type[s] + failed : w.col_trash) += 1;
            reward[s] = penalties && failed ? -w.param_action_penalty[param_row(s)] : 0.0;
        }
    }

    double stat_value(int64_t s, int64_t k, int32_t value) const {
        int64_t e = s / A;
        return std::min(w.param_stat_weight[e * w.num_stats + k] * value, w.param_stat_cap[e * w.num_stats + k]);
    }

    // Every per-agent stat of slot s in reported order (state.all_stats), into `out`.
    void all_stats(int64_t s, int32_t* out) const {
        int64_t n = 0;
        for (int kind = 0; kind < 5; ++kind)
            for (int i = 0; i < kItems; ++i) out[n++] = item_stat(kind, s)[i];
        for (int64_t c = 0; c + 1 < w.num_counters; ++c) out[n++] = count(s, c);
    }

    // Step 5: inventory change -> gained/lost and rewards (float64, as the tensor step).
    void rewards() {
        for (int64_t s = s0; s < s1; ++s) {
            int16_t* inv = inventory(s);
            int32_t *gained = item_stat(kGained, s), *lost = item_stat(kLost, s);
            const double* weight = w.param_reward_weight + (s / A) * kItems;
            const double* cap = w.param_reward_cap + (s / A) * kItems;
            double value = 0.0;
            for (int i = 0; i < kItems; ++i) {
                int16_t change = inv[i] - before[s * kItems + i];
                if (change > 0) gained[i] += change; else lost[i] -= change;
                value += std::min(weight[i] * inv[i], cap[i]);
            }
            double r = value - w.agent_inventory_value[s];
            w.agent_inventory_value[s] = value;
            if (stat_rewards) {
                all_stats(s, after.data());
                const int32_t* was = stats_before.data() + s * w.num_stats;
                double sum = 0.0;
                for (int64_t k = 0; k < w.num_stats; ++k)
                    sum += stat_value(s, k, after[k]) - stat_value(s, k, was[k]);
                r += sum;
            }
            reward[s] += r;  // it held -penalty (outcomes): -p + r is r - p exactly, batched.py's sum
        }
        if (sharing) {
            double pct = w.param_group_pct[env], shares = 0.0;
            for (int64_t s = s0; s < s1; ++s) shares += pct * reward[s];
            shares /= A;
            for (int64_t s = s0; s < s1; ++s) reward[s] = (1 - pct) * reward[s] + shares;
        }
        for (int64_t s = s0; s < s1; ++s) {
            w.rewards[s] = static_cast<float>(reward[s]);
            w.agent_episode_reward[s] += w.rewards[s];
        }
        w.env_step[env] += 1;
    }

    // The feature rows of every agent's cell and of the converters that changed (observe.py).
    void refresh() {
        for (int64_t s = s0; s < s1; ++s) {
            uint8_t* row = w.agent_rows + s * F;
            row[w.frozen_channel] = w.agent_frozen[s] > 0;
            row[w.orientation_channel] = static_cast<uint8_t>(w.agent_orientation[s]);
            row[w.color_channel] = w.agent_color[s];
            for (int i = 0; i < kItems; ++i) row[w.inventory_channel + i] = static_cast<uint8_t>(inventory(s)[i]);
            std::memcpy(cell(w.agent_cell[s]), row, F);
        }
        for (int64_t c = c0; c < c1; ++c) {
            if (!dirty[c]) continue;
            const int64_t* index = w.conv_feature_index + c * kConverterChannels;
            w.planes[index[0]] = w.conv_timer[c] > 0;
            w.planes[index[1]] = 0;
            for (int i = 0; i < kItems; ++i)
                w.planes[index[2 + i]] = static_cast<uint8_t>(std::min<int16_t>(w.conv_inventory[c * kItems + i], 255));
        }
    }

    // Step 7 for the env's agents: the windows (observe.py's gather) and the global features
    // at their centres, while the env's grid is still in the cache.
    void observe() {
        const int64_t H = w.obs_height, W = w.obs_width, row_bytes = W * F;
        const int64_t corner = (H / 2) * w.padded_width + W / 2;
        const uint8_t completion = static_cast<uint8_t>(255 * w.env_step[env] / w.env_length[env]);
        for (int64_t s = s0; s < s1; ++s) {
            uint8_t* window = w.obs + s * H * row_bytes;
            const uint8_t* top = cell(w.agent_cell[s] - corner);
            for (int64_t h = 0; h < H; ++h) std::memcpy(window + h * row_bytes, top + h * w.padded_width * F, row_bytes);
            uint8_t* centre = window + (H / 2) * row_bytes + (W / 2) * F;
            centre[w.completion_channel] = completion;
            centre[w.last_action_channel] = static_cast<uint8_t>(w.agent_last_action[2 * s]);
            centre[w.last_action_channel + 1] = static_cast<uint8_t>(w.agent_last_action[2 * s + 1]);
            // round half to even (torch.round), of the float32 product, as observe.py
            float shown = std::nearbyint(w.rewards[s] * 100.0f);
            centre[w.last_reward_channel] = std::isnan(shown) ? 0 : static_cast<uint8_t>(std::clamp(shown, 0.0f, 255.0f));
        }
    }

    // One env's whole step: its grid, agents and converters stay in the cache throughout
    // (a pass over all envs per phase would bring ~12 MB of grid state back for each).
    void run_env(int64_t e, const int64_t* actions, bool pairs, const int64_t* key) {
        env = e, s0 = e * A, s1 = s0 + A, c0 = e * (C / w.num_envs), c1 = c0 + C / w.num_envs;
        std::copy(w.agent_inventory + s0 * kItems, w.agent_inventory + s1 * kItems, before.begin() + s0 * kItems);
        if (stat_rewards) {
            for (int64_t s = s0; s < s1; ++s) all_stats(s, stats_before.data() + s * w.num_stats);
        }
        decode(actions, pairs);  // steps 1-2
        advance_converters();    // step 3
        kinds(key);              // step 4
        outcomes();
        rewards();               // steps 5-6
        refresh();
        observe();               // step 7
    }

    void run(const int64_t* actions, bool pairs, const int64_t* key) {
        if (stat_rewards) {
            stats_before.resize(S * w.num_stats);
            after.resize(w.num_stats);
        }
        for (int64_t e = 0; e < w.num_envs; ++e) run_env(e, actions, pairs, key);
    }
};

}  // namespace

extern "C" {

// flags: 1 needs, 2 costs, 4 penalties, 8 stat rewards, 16 group sharing (the engine's host
// flags: what no env's task needs is skipped, as in the tensor step).
int hg_step(const HgStep* world, const int64_t* actions, int64_t pairs, const int64_t* key, int64_t flags) {
    try {
        Step(*world, flags).run(actions, pairs != 0, key);
    } catch (const std::bad_alloc&) {  // nothing else throws; no exception may cross into C
        return 1;
    }
    return 0;
}

// "type name;" for every field, in order.
const char* hg_fields() {
#define HG_NAME(type, name) #type " " #name ";"
    return HG_FIELDS(HG_NAME);
#undef HG_NAME
}

}  // extern "C"
