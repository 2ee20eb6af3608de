//! Images: pull (by tag and digest), status, list, remove, filesystem info,
//! and an image that does not exist.

use cri_api::v1 as api;

use crate::case::{check, check_eq, fail, CaseResult, Verdict};
use crate::cri::case::CriCase;
use crate::cri::ctx::Ctx;

pub const CASES: &[CriCase] = &[
    CriCase {
        id: "images::pull_and_status",
        clauses: &["cri.PullImage", "cri.ImageStatus"],
        summary: "a pulled image has a status: its id, tags, size, and the user of its config",
        run: pull_and_status,
    },
    CriCase {
        id: "images::pull_by_digest",
        clauses: &["cri.PullImage", "cri.ImageStatus"],
        summary: "an image pulled by digest is the same image as by tag",
        run: pull_by_digest,
    },
    CriCase {
        id: "images::list",
        clauses: &["cri.ListImages"],
        summary: "ListImages lists a pulled image, and a filter on its reference lists it alone",
        run: list,
    },
    CriCase {
        id: "images::remove",
        clauses: &["cri.RemoveImage", "cri.ImageStatus"],
        summary: "a removed image has no status; removing it again is not an error",
        run: remove,
    },
    CriCase {
        id: "images::not_found",
        clauses: &["cri.PullImage", "cri.ImageStatus"],
        summary: "pulling an image that does not exist fails; its status is empty, not an error",
        run: not_found,
    },
    CriCase {
        id: "images::fs_info",
        clauses: &["cri.ImageFsInfo"],
        summary: "ImageFsInfo names at least one filesystem with its usage",
        run: fs_info,
    },
];

fn spec(image: &str) -> Option<api::ImageSpec> {
    Some(api::ImageSpec {
        image: image.to_string(),
        ..Default::default()
    })
}

pub fn pull(cx: &mut Ctx, image: &str) -> Result<String, Verdict> {
    let r = cx
        .c()
        .with_deadline(cx.shared.timeout * 6)
        .pull_image(api::PullImageRequest {
            image: spec(image),
            ..Default::default()
        });
    let r = cx.ok(&format!("PullImage {image}"), r)?;
    check(!r.image_ref.is_empty(), "cri.PullImage", "an image_ref", "an empty one")?;
    Ok(r.image_ref)
}

fn status(cx: &mut Ctx, image: &str) -> Result<Option<api::Image>, Verdict> {
    let r = cx.c().image_status(api::ImageStatusRequest {
        image: spec(image),
        verbose: false,
    });
    Ok(cx.ok(&format!("ImageStatus {image}"), r)?.image)
}

fn pull_and_status(cx: &mut Ctx) -> CaseResult {
    let image = cx.image("user");
    pull(cx, &image)?;
    let Some(img) = status(cx, &image)? else {
        return Err(fail("cri.ImageStatus", "the pulled image", "no image"));
    };
    check(
        img.id.starts_with("sha256:"),
        "cri.ImageStatus",
        "an id sha256:...",
        &img.id,
    )?;
    check(
        img.repo_tags.iter().any(|t| t == &image),
        "cri.ImageStatus",
        format!("{image} among repo_tags"),
        format!("{:?}", img.repo_tags),
    )?;
    check(img.size > 0, "cri.ImageStatus", "a size", img.size)?;
    check_eq(
        "cri.ImageStatus",
        "uid (config User 1000)",
        Some(1000),
        img.uid.as_ref().map(|u| u.value),
    )
}

fn pull_by_digest(cx: &mut Ctx) -> CaseResult {
    let tag = cx.image("latest");
    let Some(digest) = cx.shared.images.digest("latest").map(str::to_string) else {
        return Err(fail("harness", "the manifest digest of the pushed image", "none"));
    };
    let repo = tag.rsplit_once(':').map(|(r, _)| r.to_string()).unwrap_or(tag.clone());
    let by_digest = format!("{repo}@{digest}");
    pull(cx, &by_digest)?;
    let a = status(cx, &by_digest)?.ok_or_else(|| fail("cri.ImageStatus", "the image by digest", "no image"))?;
    let b = status(cx, &tag)?.ok_or_else(|| fail("cri.ImageStatus", "the image by tag", "no image"))?;
    check_eq("cri.ImageStatus", "id by digest vs by tag", &b.id, &a.id)?;
    check(
        a.repo_digests.iter().any(|d| d == &by_digest),
        "cri.ImageStatus",
        format!("{by_digest} among repo_digests"),
        format!("{:?}", a.repo_digests),
    )
}

fn list(cx: &mut Ctx) -> CaseResult {
    let image = cx.image("latest");
    pull(cx, &image)?;
    let r = cx.c().list_images(api::ListImagesRequest::default());
    let all = cx.ok("ListImages", r)?.images;
    check(
        all.iter().any(|i| i.repo_tags.contains(&image)),
        "cri.ListImages",
        format!("{image} listed"),
        format!("{} images, none tagged so", all.len()),
    )?;
    let r = cx.c().list_images(api::ListImagesRequest {
        filter: Some(api::ImageFilter { image: spec(&image) }),
    });
    let some = cx.ok("ListImages (filtered)", r)?.images;
    check(
        some.len() == 1 && some[0].repo_tags.contains(&image),
        "cri.ListImages",
        format!("{image} alone"),
        format!("{:?}", some.iter().map(|i| &i.repo_tags).collect::<Vec<_>>()),
    )
}

fn remove(cx: &mut Ctx) -> CaseResult {
    let image = cx.image("removable");
    pull(cx, &image)?;
    let r = cx.c().remove_image(api::RemoveImageRequest { image: spec(&image) });
    cx.ok("RemoveImage", r)?;
    let after = status(cx, &image)?;
    check(
        after.is_none(),
        "cri.RemoveImage",
        "no image after removal",
        format!("{after:?}"),
    )?;
    let r = cx.c().remove_image(api::RemoveImageRequest { image: spec(&image) });
    match cx.try_("RemoveImage (again)", r) {
        Ok(_) => Ok(()),
        Err(e) => Err(fail("cri.RemoveImage", "no error for an image already removed", e)),
    }
}

fn not_found(cx: &mut Ctx) -> CaseResult {
    let missing = format!(
        "{}/{}:no-such-tag",
        cx.shared.images.registry,
        crate::cri::registry::REPO
    );
    let r = cx
        .c()
        .with_deadline(cx.shared.timeout * 3)
        .pull_image(api::PullImageRequest {
            image: spec(&missing),
            ..Default::default()
        });
    if cx.try_("PullImage (missing)", r).is_ok() {
        return Err(fail(
            "cri.PullImage",
            "an error for a tag the registry lacks",
            "success",
        ));
    }
    let st = status(cx, &missing)?;
    check(
        st.is_none(),
        "cri.ImageStatus",
        "no image (and no error) for an absent image",
        format!("{st:?}"),
    )
}

fn fs_info(cx: &mut Ctx) -> CaseResult {
    let r = cx.c().image_fs_info(api::ImageFsInfoRequest {});
    let info = cx.ok("ImageFsInfo", r)?;
    let Some(fs) = info.image_filesystems.first() else {
        return Err(fail("cri.ImageFsInfo", "at least one image filesystem", "none"));
    };
    check(
        fs.fs_id.as_ref().is_some_and(|f| !f.mountpoint.is_empty()),
        "cri.ImageFsInfo",
        "a mountpoint",
        format!("{:?}", fs.fs_id),
    )?;
    check(
        fs.used_bytes.is_some() && fs.timestamp > 0,
        "cri.ImageFsInfo",
        "used_bytes and a timestamp",
        format!("used {:?} at {}", fs.used_bytes, fs.timestamp),
    )
}
