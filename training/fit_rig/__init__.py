"""``selfpose3d fit-rig``: the learned detection route adapted to a user's rig and footage, no labels."""
