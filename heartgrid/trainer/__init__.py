"""PPO training (SPEC §2): `heartgrid.trainer.run.train(config)` makes a run directory;
`heartgrid.trainer.trainer.Trainer` is the loop. See README.md in this folder."""
