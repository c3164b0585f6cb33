"""One PPO update over a filled rollout buffer (SPEC §2), top to bottom.

    advantages at ratio 1 (for sampling, global normalisation, explained variance)
    for each epoch, for each minibatch of segments (or single steps: minibatch_sampling=transitions):
        for each micro-batch (the whole minibatch unless trainer.micro_batch_size is set):
            forward_sequence → new log-probs, entropy, values
            values = the rollout's, or the network's latest for these segments (switch: value_target)
            ratio = π_new / π_old; advantages from those values, V-trace clipped at this ratio
                (switch: advantages; `gae`: the rollout's, computed once at ratio 1)
            returns = advantages + values; value clipping around the same values
            normalise advantages                          (switch: advantage_norm)
            × importance weights of prioritized sampling  (switch: minibatch_sampling)
            loss = clipped policy loss + vf_coef · clipped value loss − ent_coef · entropy
                   (+ kickstarting: action_coef · KL(teacher || student) + value_coef · (V − V_teacher)²/2)
            backward, scaled by its share of the minibatch (switch: grad_accumulation)
        clip the gradient norm (logged before clipping), optimizer step;
        stop early once approx_kl > target_kl

With several ranks the minibatches are the world's and each rank trains on its own samples of
them; the statistics above are the world's (shards.py, docs/distributed.md).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from heartgrid.config.trainer import TrainerConfig
from heartgrid.policies.distribution import logprobs_and_entropy
from heartgrid.trainer import probes
from heartgrid.trainer.advantages import explained_variance, vtrace_gae
from heartgrid.trainer.experience import Experience
from heartgrid.trainer.kickstart import kickstart_losses
from heartgrid.trainer.losses import PPOLoss, normalize, ppo_loss
from heartgrid.trainer.optimizer import Optimizer
from heartgrid.trainer.sampling import MinibatchSampler
from heartgrid.trainer.shards import WholeBatch
from heartgrid.trainer.stats import StatsAccumulator


def compute_advantages(
    experience: Experience, segments: Tensor | slice, values: Tensor, ratios: Tensor, config: TrainerConfig
) -> Tensor:
    """V-trace GAE of `segments` built on `values` [segments, T] (the bootstrap after each
    segment is always the rollout's `next_values`); with advantages=gae, plain GAE (no clips:
    a ρ̄ or c̄ below 1 would scale even ratios of 1)."""
    vtrace = config.advantages == "vtrace"
    return vtrace_gae(
        values,
        experience.rewards[segments],
        experience.dones[segments],
        experience.next_values[segments],
        ratios,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        rho_clip=config.vtrace_rho_clip if vtrace else float("inf"),
        c_clip=config.vtrace_c_clip if vtrace else float("inf"),
    )


def ppo_update(
    policy: nn.Module,
    optimizer: Optimizer,
    experience: Experience,
    sampler: MinibatchSampler,
    config: TrainerConfig,
    hyper: dict[str, float],
    progress: float,
    stats: StatsAccumulator,
    check_stop: Callable[[], None] | None = None,
    shard: WholeBatch | None = None,
    kickstart: tuple[float, float] | None = None,
) -> None:
    """Train `policy` on `experience`; diagnostics go to `stats` under `losses/*` and
    `experience/*`. `hyper` holds the current (possibly scheduled) learning_rate, clip_coef,
    ent_coef and vf_clip_coef. `check_stop` runs before each minibatch (it raises to cut the
    epoch short when a stop request has waited too long). `shard`: what this process trains on
    of each minibatch (shards.py; None: all of it, one process). `kickstart`: the (action,
    value) coefficients of the teacher's losses (the teacher's logits and values are in
    `experience`), or None: no teacher this update."""
    shard = shard if shard is not None else WholeBatch(policy)
    model = shard.model  # the policy, or its DistributedDataParallel view
    all_segments = slice(None)
    with torch.no_grad():
        advantages = compute_advantages(
            experience, all_segments, experience.values, torch.ones_like(experience.values), config
        )
        returns = advantages + experience.values
        global_mean, global_std = shard.mean_std(advantages)
    if config.value_target == "refreshed":
        experience.target_values.copy_(experience.values)
    experience.ratios.fill_(1.0)
    probes.tap("advantages", advantages=advantages, returns=returns)
    variance = (explained_variance(experience.values, returns) if shard.world is None
                else shard.world.explained_variance(experience.values, returns))
    advantages_mean, returns_mean = shard.mean(advantages), shard.mean(returns)
    if shard.main:  # the world's values: logged once
        stats.add("losses/explained_variance", variance)
        stats.add("experience/advantages", advantages_mean)
        stats.add("experience/returns", returns_mean)

    for group in optimizer.param_groups:
        group["lr"] = hyper["learning_rate"]
    micro_steps = config.micro_batch_size or config.minibatch_size
    device = experience.values.device
    legacy = config.grad_accumulation == "legacy"

    # Diagnostics stay on the device until the end of the update (in `shard`): reading each one
    # back as it is computed would make the CPU wait for the GPU after every micro-batch.
    @torch.no_grad()
    def current_advantages() -> Tensor:
        """Every segment's advantages now: refreshed values, the latest ratios (prioritized
        sampling's priorities before each minibatch)."""
        values = experience.target_values if config.value_target == "refreshed" else experience.values
        ratios = experience.ratios if config.advantages == "vtrace" else torch.ones_like(experience.values)
        return compute_advantages(experience, all_segments, values, ratios, config)

    # GAE on the rollout's values cannot change during the update: nothing to refresh.
    refreshable = config.advantages == "vtrace" or config.value_target == "refreshed"
    minibatches = (
        (epoch, minibatch)
        for epoch in range(config.update_epochs)
        for minibatch in sampler.epoch(advantages, progress, refresh=current_advantages if refreshable else None)
    )
    for epoch, minibatch in minibatches:
        if check_stop is not None:
            check_stop()
        # Micro-batches of whole segments, or of single steps with transition sampling.
        micro = micro_steps if minibatch.transitions else micro_steps // config.bptt_horizon
        parts = shard.parts(minibatch, micro, legacy, device)
        probes.tap("sampling", epoch=epoch, segments=minibatch.segments, weights=minibatch.weights)
        optimizer.zero_grad()
        minibatch_kl = torch.zeros((), device=device)
        # Accumulated micro-batches must give the whole minibatch's gradient, so they normalise
        # their advantages with the minibatch's statistics, not each with its own.
        norm_stats = None
        if config.advantage_norm == "minibatch" and not legacy and len(parts) > 1:
            mine = torch.cat([part.segments for part in parts])
            norm_stats = minibatch_advantage_stats(policy, experience, mine, micro, advantages,
                                                   config, minibatch.transitions, mean_std=shard.mean_std)
        for part in parts:
            if legacy:
                # The reference bug, kept for A/B: the gradient of every micro-batch but the
                # last is thrown away before the optimizer step.
                optimizer.zero_grad()
            if part.count == 0:  # another rank's samples only
                shard.idle(part, normalises=config.advantage_norm == "minibatch" and norm_stats is None)
                continue
            with shard.syncing(part):
                if minibatch.transitions:
                    loss = transition_loss(model, experience, part.segments, advantages,
                                           (global_mean, global_std), config, hyper, norm_stats=norm_stats,
                                           mean_std=shard.mean_std, kickstart=kickstart)
                else:
                    loss = minibatch_loss(
                        model, experience, part.segments, part.weights,
                        (global_mean, global_std), config, hyper, rollout_advantages=advantages,
                        norm_stats=norm_stats, mean_std=shard.mean_std, kickstart=kickstart,
                    )
                probes.tap("losses", loss=loss)
                (loss.total * part.scale).backward()
            minibatch_kl += part.share * loss.approx_kl
            shard.record(loss, part)
        probes.tap("gradients", policy=policy)
        grad_norm = nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
        shard.record_replicated("losses/grad_norm", grad_norm)
        optimizer.step()
        probes.tap("weights", policy=policy)
        if config.target_kl is not None and shard.total(minibatch_kl).item() > config.target_kl:
            if shard.main:
                stats.add("losses/early_stop_epoch", epoch)
            break
    for name, values in shard.finish().items():
        stats.add(name, values)


@torch.no_grad()
def minibatch_advantage_stats(
    policy: nn.Module, experience: Experience, segments: Tensor, micro: int, rollout_advantages: Tensor,
    config: TrainerConfig, transitions: bool, mean_std: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None,
) -> tuple[Tensor, Tensor]:
    """Mean and std of the advantages the whole minibatch's loss will see. GAE's are the
    rollout's; V-trace's depend on the current policy's ratios, so each micro-batch is run
    forward once more without a graph (the weights do not change before the optimizer step,
    so these are the ratios its loss will compute). `mean_std`: the world's (several ranks;
    `segments` are then this rank's, possibly none)."""
    if transitions:
        advantages = rollout_advantages.flatten(0, 1)[segments]
    elif config.advantages == "gae":
        advantages = rollout_advantages[segments]
    else:
        parts = []
        for start in range(0, len(segments), micro):
            part = segments[start:start + micro]
            logits, _ = policy.forward_sequence(experience.obs[part], experience.segment_start_state(part),
                                                experience.episode_starts[part])
            new_logprobs, _ = logprobs_and_entropy(logits, experience.actions[part])
            ratios = (new_logprobs - experience.logprobs[part]).exp()
            values = (experience.target_values if config.value_target == "refreshed" else experience.values)[part]
            parts.append(compute_advantages(experience, part, values, ratios, config))
        advantages = torch.cat(parts) if parts else experience.values.new_zeros(0)
    return (advantages.mean(), advantages.std()) if mean_std is None else mean_std(advantages)


def minibatch_loss(
    policy: nn.Module,
    experience: Experience,
    segments: Tensor,
    weights: Tensor | None,
    global_stats: tuple[Tensor, Tensor],
    config: TrainerConfig,
    hyper: dict[str, float],
    rollout_advantages: Tensor | None = None,
    norm_stats: tuple[Tensor, Tensor] | None = None,
    mean_std: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None,
    kickstart: tuple[float, float] | None = None,
) -> PPOLoss:
    """The PPO loss of the segments `segments` (LongTensor on the buffer's device);
    `rollout_advantages` [all segments, T] are the advantages at ratio 1; `norm_stats`: the
    (mean, std) that advantage_norm=minibatch uses (None: these segments' own, or the world's
    for this part through `mean_std` when several ranks train together); `kickstart`: the
    teacher's loss coefficients (None: no teacher)."""
    logits, new_values = policy.forward_sequence(
        experience.obs[segments],
        experience.segment_start_state(segments),
        experience.episode_starts[segments],
    )
    new_logprobs, entropy = logprobs_and_entropy(logits, experience.actions[segments])
    old_logprobs = experience.logprobs[segments]

    # The values advantages, returns and value clipping are all built on. `refreshed` (as in
    # PufferLib): those the network computed the last time these segments were trained on
    # (the rollout's the first time), so a segment seen again in a later epoch, or drawn twice
    # by prioritized sampling, is judged against the network's newer estimate.
    if config.value_target == "refreshed":
        values = experience.target_values[segments]  # a copy: the write below leaves it as is
        experience.target_values[segments] = new_values.detach()
    else:
        values = experience.values[segments]

    if config.advantages == "vtrace":
        # V-trace: advantages of this minibatch with the current policy's ratios.
        ratios = (new_logprobs - old_logprobs).exp().detach()
        experience.ratios[segments] = ratios
        advantages = compute_advantages(experience, segments, values, ratios, config)
        returns = advantages + values
    else:
        # Plain GAE, as computed once for the whole rollout (CleanRL, SB3).
        if rollout_advantages is None:
            raise ValueError("trainer.advantages=gae needs the rollout's advantages")
        advantages = rollout_advantages[segments]
        returns = advantages + experience.values[segments]

    loss = finish_loss(new_logprobs, old_logprobs, entropy, new_values, values, advantages, returns,
                       weights, global_stats, config, hyper, norm_stats, mean_std)
    if kickstart is not None:
        add_kickstart(loss, logits, new_values, experience.teacher_logits[segments],
                      experience.teacher_values[segments], kickstart)
    return loss


def transition_loss(
    policy: nn.Module,
    experience: Experience,
    steps: Tensor,
    rollout_advantages: Tensor,
    global_stats: tuple[Tensor, Tensor],
    config: TrainerConfig,
    hyper: dict[str, float],
    norm_stats: tuple[Tensor, Tensor] | None = None,
    mean_std: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None,
    kickstart: tuple[float, float] | None = None,
) -> PPOLoss:
    """The PPO loss of single steps (`steps`: indices into the flattened [S × T] buffer), each
    run from the recurrent state stored when it was acted on (minibatch_sampling=transitions);
    advantages are the rollout's GAE."""
    def at(tensor: Tensor) -> Tensor:
        return tensor.flatten(0, 1)[steps]

    state = tuple(at(s) for s in experience.step_state)
    logits, new_values, _ = policy(at(experience.obs), state)
    new_logprobs, entropy = logprobs_and_entropy(logits, at(experience.actions))
    values, advantages = at(experience.values), at(rollout_advantages)
    loss = finish_loss(new_logprobs, at(experience.logprobs), entropy, new_values, values,
                       advantages, advantages + values, None, global_stats, config, hyper, norm_stats, mean_std)
    if kickstart is not None:
        add_kickstart(loss, logits, new_values, at(experience.teacher_logits), at(experience.teacher_values),
                      kickstart)
    return loss


def add_kickstart(loss: PPOLoss, logits: Tensor, values: Tensor, teacher_logits: Tensor, teacher_values: Tensor,
                  coefficients: tuple[float, float]) -> None:
    """Add the teacher's losses of these steps to `loss` (trainer/kickstart.py). They are plain
    means over the steps, like the value loss: prioritized sampling's importance weights correct
    the advantages' sampling bias and are not applied to them."""
    action_loss, value_loss = kickstart_losses(logits, values, teacher_logits, teacher_values)
    action_coef, value_coef = coefficients
    loss.total = loss.total + action_coef * action_loss + value_coef * value_loss
    loss.ks_action_loss, loss.ks_value_loss = action_loss, value_loss


def finish_loss(
    new_logprobs: Tensor, old_logprobs: Tensor, entropy: Tensor, new_values: Tensor, values: Tensor,
    advantages: Tensor, returns: Tensor, weights: Tensor | None,
    global_stats: tuple[Tensor, Tensor], config: TrainerConfig, hyper: dict[str, float],
    norm_stats: tuple[Tensor, Tensor] | None = None,
    mean_std: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None,
) -> PPOLoss:
    """Normalise the advantages (switch: advantage_norm; `minibatch` with `norm_stats` when a
    micro-batch stands for a larger minibatch, else these advantages' own statistics, or the
    world's through `mean_std`), weight them (prioritized sampling), and build the clipped PPO
    loss."""
    if config.advantage_norm == "minibatch":
        if norm_stats is not None:
            mean, std = norm_stats
        else:
            mean, std = (advantages.mean(), advantages.std()) if mean_std is None else mean_std(advantages)
        advantages = normalize(advantages, mean, std)
    elif config.advantage_norm == "global":
        advantages = normalize(advantages, *global_stats)
    if weights is not None:
        advantages = advantages * weights[:, None]

    return ppo_loss(
        new_logprobs=new_logprobs,
        old_logprobs=old_logprobs,
        entropy=entropy,
        new_values=new_values,
        old_values=values,
        advantages=advantages,
        returns=returns,
        clip_coef=hyper["clip_coef"],
        vf_clip_coef=hyper["vf_clip_coef"],
        vf_coef=config.vf_coef,
        ent_coef=hyper["ent_coef"],
    )
