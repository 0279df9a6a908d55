# A notebook with a cell that raises and a cell that does not parse (the Sigmoid one).
# %% reference header Linear ReLU LeakyReLU
# %%
ratio = 1 / 0  # this cell raises ZeroDivisionError; the rest of the notebook still runs
# %%
class Sigmoid:
    def forward(self, x)
        return 1 / (1 + torch.exp(-x))
# %%
print("a cell that raises after a definition")
SEEN = True
raise ValueError("this cell raises on purpose")
# %% reference Tanh MSELoss CrossEntropyLoss Net
